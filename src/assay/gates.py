"""Gates: named checks of measured values against limits set in the spec before training. A
failed gate's reason names every failed check, its value and its limit."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Check:
    name: str
    value: float  # NaN: the value could not be measured, and the check fails saying why
    limit: float
    rule: str  # ">=" or "<="
    note: str = ""  # why the value is missing, or what else a reader needs to know

    @property
    def passed(self) -> bool:
        return self.value >= self.limit if self.rule == ">=" else self.value <= self.limit

    def describe(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        if self.value != self.value:  # NaN
            return f"{self.name} cannot be judged ({self.note}): {verdict}"
        note = f"; {self.note}" if self.note else ""
        return (
            f"{self.name} {self.value:.6g} (must be {self.rule} {self.limit:.6g}{note}): {verdict}"
        )


@dataclass(frozen=True)
class GateReport:
    name: str  # which gate: "compression", "fairness", "decision", "quality"
    checks: tuple[Check, ...]
    warn_only: bool = False  # failed checks are reported as warnings and do not fail the gate
    evidence: str = ""  # the figures a reader needs whatever the verdict, after the reason

    @property
    def passed(self) -> bool:
        return self.warn_only or all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def reason(self) -> str:
        return self._verdict() + (f"; {self.evidence}" if self.evidence else "")

    def _verdict(self) -> str:
        failed = "; ".join(c.describe() for c in self.failed)
        if not self.failed:
            return f"passed ({len(self.checks)} checks)"
        if self.warn_only:
            return f"passed with warnings ({self.name} gate set to warn): {failed}"
        return f"{self.name} gate failed: {failed}"

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "checks": [{**asdict(c), "passed": c.passed} for c in self.checks],
        }
