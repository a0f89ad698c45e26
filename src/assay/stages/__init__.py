"""The stages of a training, one module each (assay.stages.stage says what a stage declares;
assay.stages.table lists them in order)."""
