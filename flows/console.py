"""What an expected failure looks like on the console: Prefect's log lines, without the
tracebacks. A failed gate or a bad file is an answer, not a crash: the console shows one line
for it, and the traceback stays in the Prefect logs (API and UI) for whoever debugs.

Prefect builds its console handler from its logging settings each time it sets logging up
(the temporary API does so again), so the handler class is chosen there:
`PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS=flows.console.OneLineConsoleHandler`, which `assay`
sets unless ASSAY_TRACEBACKS=1."""

from __future__ import annotations

import logging

from prefect.logging.handlers import PrefectConsoleHandler

HANDLER = f"{__name__}.OneLineConsoleHandler"


class OneLineConsoleHandler(PrefectConsoleHandler):
    """Prefect's console handler, leaving out exception and stack text. The record is restored
    afterwards: the API handler, which may format it later, still sends the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved
