"""DAgger rounds by takeover (`vla train --sim-detours S --detour-policy P`): the shipped policy drives the
first ticks through the control loop, the expert takes over from the measured state, and the episode
records the expert from there. Real MuJoCo, the real shipped policy, the real expert."""

import numpy as np
import pytest

from sim import make_env
from sim.tabletop.experts import ScriptedExpert, SkillExpert
from vla.data.record import EpisodeDropped, expert_episode
from vla.evaluate.takeover import NEVER_LEFT, PolicyDetour
from vla.loading import SHIPPED_POLICY
from vla.train.rollouts import SimDemos
from vla.types import ACTION, OBS_STATE


def _replay_detour(env, detour, seed):
    """The scene `expert_episode` hands to the expert: the same seed's scene and detour ticks."""
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng([seed, 0xDE70])
    assert rng.random() < 1.0  # the draw that picks a detour episode
    return detour(env, obs, rng)


def test_a_takeover_episode_records_the_expert_from_where_the_policy_left_the_arm():
    env = make_env("pick", image_size=None)
    expert, detour = ScriptedExpert(env), PolicyDetour(SHIPPED_POLICY)
    for seed in range(2000, 2010):  # the first seed whose detour leaves something to show
        try:
            frames, success = expert_episode(env, expert, seed, detours=1.0, detour=detour)
        except EpisodeDropped:
            continue
        if success:
            break
    else:
        pytest.fail("no takeover episode of ten was kept")
    start, _ = env.reset(seed=seed)
    obs, info = _replay_detour(env, detour, seed)
    assert not info["success"]
    # the first recorded frame is the state the policy's ticks reached, not the seed's start
    np.testing.assert_array_equal(frames[0][OBS_STATE], obs[OBS_STATE])
    assert np.abs(obs[OBS_STATE] - start[OBS_STATE]).max() > 0.02
    # and its label is the expert's action at that state (a fresh expert taking over there)
    fresh = ScriptedExpert(env)
    fresh.reset()
    np.testing.assert_array_equal(frames[0][ACTION], fresh.predict_chunk(obs)[0])
    env.close()


def test_a_policy_that_never_moves_the_arm_adds_nothing_and_says_so():
    """The expert's skills, told a long instruction that is not one subtask, hold the arm still."""
    env = make_env("tower", image_size=32)
    with pytest.raises(EpisodeDropped, match="did not move the arm"):
        expert_episode(env, ScriptedExpert(env), 5, detours=1.0, detour=PolicyDetour(SkillExpert(env)))
    assert "nothing new to show" in NEVER_LEFT
    env.close()


def test_a_task_the_policy_solves_during_its_ticks_is_dropped_not_recorded():
    env = make_env("touch", image_size=32)
    skills = SkillExpert(env)  # solves touch in about 25 ticks: a detour of 40 ends it
    with pytest.raises(EpisodeDropped, match="solved during the detour"):
        expert_episode(env, ScriptedExpert(env), 5, detours=1.0, detour=PolicyDetour(skills, min_ticks=40))
    env.close()


def test_a_detour_policy_must_be_a_policy_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a policy folder"):
        PolicyDetour(tmp_path)
    with pytest.raises(ValueError, match="min_ticks=0"):
        PolicyDetour(SHIPPED_POLICY, min_ticks=0)


def test_sim_demos_roll_takeover_episodes_in_worker_processes():
    """The detour travels to a rollout process as its folder, the policy loads there and drives: every kept
    episode starts where the policy left the arm, off the home pose each scene starts from."""
    demos = SimDemos(["pick"], 2, workers=1, progress=False, detours=1.0, detour=PolicyDetour(SHIPPED_POLICY),
                     seed=3000, images=False)
    assert demos.num_episodes == 2
    assert f"after {SHIPPED_POLICY}'s ticks" in demos.source
    env = make_env("pick", image_size=32)
    home = env.reset(seed=0)[0][OBS_STATE]
    env.close()
    for episode in demos.episodes:
        assert np.abs(episode[OBS_STATE][0][:-1] - home[:-1]).max() > 0.02
