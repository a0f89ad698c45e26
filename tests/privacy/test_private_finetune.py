"""Fine-tuning by DP-SGD through the project's own loop: it learns, it spends what was planned
and no more, and the plain path is left as it was."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from opacus import PrivacyEngine
from sklearn.metrics import roc_auc_score

from assay.modeling.encoder import EncoderConfig, predict_proba
from assay.modeling.finetune import finetune
from assay.modeling.tokenizer import RecordTokenizer
from assay.privacy.budget import StageSteps, composed_epsilon, shared_noise
from assay.privacy.dpsgd import PrivateSGD
from tests.conftest import mixed_rows

ROWS, BATCH, EPOCHS, EPSILON, DELTA = 600, 32, 8, 8.0, 1e-4


@pytest.mark.slow  # ten seconds or more of DP-SGD
def test_private_lora_finetuning_learns_within_its_budget(mixed_spec):
    warnings.simplefilter("ignore")  # Opacus: the token ids need no gradient (true)
    train, valid, test = mixed_rows(ROWS, 0), mixed_rows(300, 2), mixed_rows(400, 1)
    tokenizer = RecordTokenizer.fit(train, mixed_spec)
    config = EncoderConfig.from_spec(mixed_spec.model, tokenizer.vocab_size, tokenizer.length)

    def labels(frame):
        return (frame["y"] == "yes").to_numpy(dtype=np.int64)

    settings = mixed_spec.finetune.model_copy(
        update={"method": "lora", "epochs": EPOCHS, "batch_size": BATCH, "patience": EPOCHS,
                "learning_rate": 2e-2}
    )  # fmt: skip
    planned = [StageSteps.planned("finetune", ROWS, BATCH, EPOCHS)]
    noise = shared_noise(planned, EPSILON, DELTA, "rdp")
    engine = PrivacyEngine(accountant="rdp")
    result = finetune(
        tokenizer.encode(train),
        labels(train),
        tokenizer.encode(valid),
        labels(valid),
        config,
        settings,
        seed=0,
        private=PrivateSGD(engine, noise, max_grad_norm=1.0, seed=0),
    )
    auc = roc_auc_score(labels(test), predict_proba(result.model, tokenizer.encode(test)).numpy())
    assert auc > 0.75, auc  # 600 rows at epsilon 8: 0.832 here (0.999 without DP)
    spent = engine.get_epsilon(DELTA)
    assert spent == composed_epsilon(planned, noise, DELTA, "rdp") and spent <= EPSILON
    assert result.adapter_state and any("lora_B" in k for k in result.adapter_state)
