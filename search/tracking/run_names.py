"""What a trial's MLflow run is called: what the trial is, not its id.

``robust_vit fan tap[1,2,3]/all 4 heads adl 0.5``: the model, the channel mixer, the TAP setting
(its dilations and blocks, or ``no-tap``), the head count and the ADL weight, each only when the trial
has it (a field that does not apply to its model is not in its params). The trial id stays in the
run's ``trial_id`` tag: runs are found by the tag, never by the name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def trial_run_name(params: Mapping[str, Any], trial_id: str) -> str:
    """The run name of a trial with flat params ``params`` (the trial id when it has none yet)."""
    parts = [str(params["model_name"])] if "model_name" in params else []
    if "mixer" in params:
        parts.append(str(params["mixer"]))
    if "tap" in params:
        if params["tap"]:
            dilations = ",".join(_number(d) for d in params.get("tap_dilations") or ())
            blocks = params.get("tap_blocks")
            parts.append(f"tap[{dilations}]" + (f"/{blocks}" if blocks not in (None, "") else ""))
        else:
            parts.append("no-tap")
    if "num_heads" in params:
        parts.append(f"{params['num_heads']} heads")
    if "adl_weight" in params:
        parts.append(f"adl {_number(params['adl_weight'])}")
    return " ".join(parts) or trial_id
