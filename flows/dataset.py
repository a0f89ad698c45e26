"""What every flow does first: read its spec, find its dataset's namespace, and make the run
findable by dataset in the Prefect UI (a `dataset:<name>` tag and the name as a prefix of the
run's name), whether a deployment, a schedule, an event or `assay run` started it."""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.runtime import deployment, flow_run

from assay.config import Spec, load_spec
from assay.errors import SpecError
from assay.home import Home


def dataset_tag(name: str) -> str:
    return f"dataset:{name}"


def open_dataset(
    source: str | Spec, home: str | None, profile: str | None = None
) -> tuple[Spec, Home]:
    """The run's spec (read from the path `source`, with `profile`; or `source` itself, as
    the caller read it: `assay run` reads its spec once and hands it down, so its ingest and
    its training cannot see two versions of a file edited meanwhile) and its dataset's view
    of the home. A deployment is named after its dataset (`train/<name>`): a deployment that
    names another dataset than its spec's is refused before anything is read or written."""
    spec = load_spec(source, profile) if isinstance(source, str) else source
    served = deployment.name
    if served is not None and served != spec.name:
        raise SpecError(
            f"deployment {flow_run.flow_name}/{served} runs {source}, whose dataset is "
            f"'{spec.name}': a deployment is named after its spec's dataset (see "
            f"docs/operations.md, Production)"
        )
    label_run(spec.name)
    return spec, Home.from_env(home).for_dataset(spec.name)


def label_run(name: str) -> None:
    """Add the dataset tag and name prefix to this flow run, once."""
    run_id, tags, title = flow_run.id, list(flow_run.tags), flow_run.name
    if run_id is None:
        return
    wanted = dataset_tag(name)
    if wanted in tags and title.startswith(f"{name}-"):
        return
    with get_client(sync_client=True) as client:
        client.update_flow_run(
            run_id,
            name=title if title.startswith(f"{name}-") else f"{name}-{title}",
            tags=[*tags, wanted] if wanted not in tags else tags,
        )
