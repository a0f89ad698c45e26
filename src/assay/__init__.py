"""assay: arriving data in, a model fit to ship out."""
