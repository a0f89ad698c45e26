"""Gates: named checks of measured values against limits set in the spec before training. A
failed gate's reason names every failed check, its value and its limit."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    limit: float
    rule: str  # ">=" or "<="

    @property
    def passed(self) -> bool:
        return self.value >= self.limit if self.rule == ">=" else self.value <= self.limit

    def describe(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        return f"{self.name} {self.value:.6g} (must be {self.rule} {self.limit:.6g}): {verdict}"


@dataclass(frozen=True)
class GateReport:
    name: str  # which gate: "compression", "fairness"
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def reason(self) -> str:
        if self.passed:
            return f"passed ({len(self.checks)} checks)"
        return f"{self.name} gate failed: " + "; ".join(c.describe() for c in self.failed)

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "checks": [{**asdict(c), "passed": c.passed} for c in self.checks],
        }
