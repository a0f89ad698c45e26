"""What the command line's modules share: the default spec, and the exit codes a script that
runs assay can tell apart (README, Exit codes)."""

DEFAULT_SPEC = "configs/adult.yaml"
OK, QUARANTINED, USAGE, GATE_FAILED, UNREACHABLE = 0, 1, 2, 3, 4
REGISTRY_ALIASES = ("champion", "challenger")
LOCAL_DASK = "local"  # `--dask` with no address: a local cluster
