"""What carries over from one day to the next, declared by attribute name, so that a
checkpoint can save a run's whole state and a resumed run can pick it up.

A part of the engine lists in `carries` the attributes that change as days pass;
everything else it holds is rebuilt from the scenario (same seed, same values), and the
random streams are keyed by day, so they need no saved position. A new stage gets
checkpointing by naming its attributes there.
"""

from __future__ import annotations

from typing import Any, ClassVar


class Carrier:
    #: Attributes that change from day to day (what a checkpoint saves).
    carries: ClassVar[tuple[str, ...]] = ()

    def carried(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.carries}

    def restore(self, saved: dict[str, Any]) -> None:
        if set(saved) != set(self.carries):
            raise ValueError(f"{type(self).__name__}: the checkpoint holds {sorted(saved)}, "
                             f"expected {sorted(self.carries)}")
        for name, value in saved.items():
            setattr(self, name, restored(getattr(self, name), value))


def restored(live: Any, saved: Any) -> Any:
    """`saved` put in place of `live`. Objects and dicts are filled in place, because
    other parts of the engine hold them too (the network, the state, the event windows);
    arrays, lists and numbers are simply replaced."""
    if isinstance(live, dict) and isinstance(saved, dict):
        for key in [k for k in live if k not in saved]:
            del live[key]
        for key, value in saved.items():
            live[key] = restored(live[key], value) if key in live else value
        return live
    if hasattr(live, "__dict__") and type(live) is type(saved):
        live.__dict__.clear()
        live.__dict__.update(saved.__dict__)
        return live
    return saved
