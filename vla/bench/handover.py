"""`vla bench handover`: how smooth chunk hand-overs are, with and without cross-fading.

The trained policy drives the simulator through the control loop, refilling early (when
`refill_threshold` actions are left) so that every new chunk overlaps the old one. For each
blend setting, on the same seeds: the largest and the mean joint step at hand-over ticks
(rad per tick, arm joints), the same away from hand-overs, and task success.
"""

from __future__ import annotations

import numpy as np

from sim import make_env
from vla.evaluate import rollout
from vla.policy import VLAPolicy


def bench_handover(policy_dir: str, task: str = "pick", episodes: int = 10, refill_threshold: int = 2,
                   blends: tuple[int, ...] = (0, 2)) -> dict:
    policy = VLAPolicy.from_pretrained(policy_dir)
    env = make_env(task)
    report: dict = {"policy": policy_dir, "task": task, "episodes": episodes, "refill_threshold": refill_threshold}
    for blend in blends:
        at_handover, elsewhere = [], []
        tick = {"previous": None, "handover": False}

        def observe(steps, env, status, tick=tick, at_handover=at_handover, elsewhere=elsewhere):
            if tick["previous"] is not None:
                step = float(np.abs(status.action[:-1] - tick["previous"][:-1]).max())
                (at_handover if tick["handover"] else elsewhere).append(step)
            tick["handover"], tick["previous"] = status.new_chunk, status.action

        successes = 0
        for seed in range(episodes):
            tick["previous"], tick["handover"] = None, False
            successes += rollout(env, policy, seed, refill_threshold=refill_threshold, blend=blend,
                                 observe=observe).success
        report[f"blend_{blend}"] = {
            "handover_max_step_rad": round(max(at_handover), 4),
            "handover_mean_step_rad": round(float(np.mean(at_handover)), 4),
            "other_mean_step_rad": round(float(np.mean(elsewhere)), 4), "handovers": len(at_handover),
            "successes": successes,
        }
    env.close()
    return report
