"""What a federated teacher's record says, for the run summary, MLflow, the version's tags
and the model card: the sites and their rows, the rounds, the bytes that crossed, each site's
validation ROC AUC, and what the protocol lets leave a site."""

from __future__ import annotations

from dataclasses import dataclass

AGGREGATION = "FedAvg weighted by training rows, FFA-LoRA (A frozen at its seeded start, B trained)"
CROSSED = (
    "each site's census: training rows, positive labels, validation rows, snapshot fingerprint",
    "each round's adapter update: LoRA B, the head and the numeric embeddings",
    "each round's validation ROC AUC per site",
)
CENTRAL = (
    "tokenizer, pretraining, distillation, calibration, thresholds and mitigation: on the "
    "coordinator's own rows",
    "test figures: on the coordinator's test rows",
)


@dataclass(frozen=True)
class FederationReport:
    site_rows: dict[str, int]
    rounds: list[dict]  # per round: valid_auc (weighted), bytes, sites
    best_round: int
    site_auc: dict[str, float]  # at the best round

    @classmethod
    def of(cls, record: dict) -> FederationReport:
        return cls(record["site_rows"], record["rounds"], record["best_round"], record["site_auc"])

    @property
    def best_auc(self) -> float:
        return self.rounds[self.best_round - 1]["valid_auc"]

    @property
    def rounds_trained(self) -> int:
        """Rounds whose updates were averaged: every scored round but the last."""
        return len(self.rounds) - 1

    @property
    def bytes_per_round(self) -> float:
        return sum(r["bytes"] for r in self.rounds) / len(self.rounds)

    def worst_site(self) -> tuple[str, float]:
        return min(self.site_auc.items(), key=lambda item: item[1])

    def summary(self) -> str:
        rows = ", ".join(f"{site} {n:,} rows" for site, n in self.site_rows.items())
        worst, auc = self.worst_site()
        return (
            f"{len(self.site_rows)} sites ({rows}), best round {self.best_round} of "
            f"{len(self.rounds)}: sites' validation ROC AUC {self.best_auc:.4f} (worst {worst} "
            f"{auc:.4f}); {self.bytes_per_round / 1e3:,.1f} kB through the exchange per round"
        )

    def figures(self) -> dict[str, float]:
        return {
            "federation.rounds": float(len(self.rounds)),
            "federation.best_round": float(self.best_round),
            "federation.valid_auc": self.best_auc,
            "federation.worst_site_auc": self.worst_site()[1],
            "federation.bytes_per_round": self.bytes_per_round,
            **{f"federation.site_auc.{site}": auc for site, auc in self.site_auc.items()},
        }

    def tags(self) -> dict[str, str]:
        return {
            "assay.federation.sites": ",".join(self.site_rows),
            "assay.federation.rounds": str(len(self.rounds)),
            "assay.federation.best_round": str(self.best_round),
            "assay.federation.aggregation": AGGREGATION,
        }

    def card(self) -> list[str]:
        rows = [
            f"| {site} | {n:,} | {self.site_auc[site]:.4f} |" for site, n in self.site_rows.items()
        ]
        return [
            "## Federated fine-tuning",
            "",
            f"The teacher's adapter was trained at {len(self.site_rows)} sites, each on its own "
            f"rows in its own home, in {self.rounds_trained} rounds ({AGGREGATION}). Each round "
            f"scored the adapter it started from on the sites' validation rows, and one more "
            f"scored the last average; the adapter that ships is the one round "
            f"{self.best_round} scored ({self.best_round - 1} rounds of averaging behind it).",
            "",
            "| site | training rows | validation ROC AUC (best round) |",
            "|---|---|---|",
            *rows,
            "",
            "What left the sites (and nothing else; never a row):",
            *(f"- {item}" for item in CROSSED),
            "",
            "At the coordinator:",
            *(f"- {item}" for item in CENTRAL),
            "",
        ]
