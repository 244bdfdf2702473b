import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim
from sim import make_env, resolve_tasks
from sim.tabletop import TASKS
from sim.tabletop.describer import REGION_X, REGION_Y
from sim.tabletop.experts import ScriptedExpert
from sim.tabletop.scene import CUBE_HALF, ENVIRONMENT_STATE_NAMES
from vla.types import NAMED_OBJECTS_NAMES, OBS_ENV_STATE, OBS_NAMED, OBS_STATE, TASK, image_key


@pytest.mark.parametrize("task_id", list(TASKS))
def test_check_env_passes(task_id):
    env = gym.make(TASKS[task_id].env_id, image_size=32)
    assert env.spec.max_episode_steps == TASKS[task_id].max_steps
    with pytest.warns(UserWarning):  # gymnasium recommends normalized Box actions; ours are joint units
        check_env(env.unwrapped, skip_render_check=False)
    env.close()


def test_observation_uses_lerobot_keys_and_robot_config():
    env = make_env("pick")
    obs, info = env.reset(seed=3)
    robot = env.unwrapped.robot
    assert set(obs) == {image_key("scene"), image_key("wrist"), OBS_STATE, OBS_ENV_STATE, OBS_NAMED, TASK}
    assert obs[image_key("scene")].shape == (128, 128, 3) and obs[image_key("wrist")].dtype == np.uint8
    assert obs[OBS_STATE].dtype == np.float32 and obs[OBS_STATE].shape == (robot.action_dim,)
    assert np.allclose(obs[OBS_STATE], robot.home_array, atol=1e-3)
    assert obs[TASK] == info["task"] and "cube" in obs[TASK]
    assert info["subtasks"] == [info["subtask"]] and info["subtask_index"] == 0
    assert info["scene_description"].startswith("the red cube is")
    # privileged object positions, in ENVIRONMENT_STATE_NAMES order
    scene = env.unwrapped.scene
    env_state = obs[OBS_ENV_STATE]
    assert env_state.shape == (len(ENVIRONMENT_STATE_NAMES),) and env_state.dtype == np.float32
    names = list(ENVIRONMENT_STATE_NAMES)
    np.testing.assert_allclose(env_state[names.index("blue_cube.x") : names.index("blue_cube.z") + 1],
                               scene.cube_pos("blue"), atol=1e-6)
    np.testing.assert_allclose(env_state[names.index("tcp.x") :], scene.tcp_pos(), atol=1e-6)
    env.close()


def _run(env, seed, steps):
    expert = ScriptedExpert(env)
    obs, info = env.reset(seed=seed)
    expert.reset()
    trace = [obs]
    for _ in range(steps):
        obs, *_ = env.step(expert.predict_chunk(obs)[0])
        trace.append(obs)
    return info, trace


def test_same_seed_same_episode():
    env_a, env_b = make_env("stack"), make_env("stack")
    info_a, trace_a = _run(env_a, seed=11, steps=15)
    info_b, trace_b = _run(env_b, seed=11, steps=15)
    assert info_a["task"] == info_b["task"]
    for a, b in zip(trace_a, trace_b, strict=True):
        for key in a:
            assert np.array_equal(a[key], b[key]), key
    _, trace_c = _run(env_a, seed=12, steps=0)
    assert not np.array_equal(trace_a[0][image_key("scene")], trace_c[0][image_key("scene")])
    env_a.close()
    env_b.close()


def test_time_limit_truncates():
    env = make_env("touch")
    env.reset(seed=0)
    home = env.unwrapped.robot.home_array
    for _ in range(TASKS["touch"].max_steps):
        _, _, terminated, truncated, _ = env.step(home)
    assert truncated and not terminated
    env.close()


def test_bad_actions_are_rejected_with_clear_errors():
    env = make_env("pick").unwrapped
    env.reset(seed=0)
    home = env.robot.home_array
    with pytest.raises(ValueError, match=r"shape \(7,\); expected \(8,\)"):
        env.step(home[:7])
    bad = home.copy()
    bad[2] = np.nan
    with pytest.raises(ValueError, match="non-finite targets for \\['joint3'\\]"):
        env.step(bad)
    bad[2] = np.inf
    with pytest.raises(ValueError, match="joint3"):
        env.step(bad)
    env.close()


def test_out_of_range_targets_are_limited_and_reported():
    env = make_env("pick").unwrapped
    env.reset(seed=0)
    target = env.robot.home_array.copy()
    target[3] = 0.5  # joint4 must stay below -0.0698
    target[7] = 0.1  # fingers open 4 cm at most
    _, _, _, _, info = env.step(target)
    assert info["action_clipped"] and info["clipped_joints"] == ["joint4", "finger_joint1"]
    assert env.scene.data.ctrl[3] == pytest.approx(env.robot.joints[3].upper, abs=1e-6)
    _, _, _, _, info = env.step(env.robot.home_array)
    assert not info["action_clipped"] and info["clipped_joints"] == []
    env.close()


def test_unknown_task_lists_valid_ids():
    with pytest.raises(ValueError, match="valid ids: touch, pick, place_in_bowl"):
        make_env("fly")
    with pytest.raises(ValueError, match="unknown task id"):
        resolve_tasks("pick,fly")
    assert resolve_tasks("single") == ["touch", "pick", "place_in_bowl", "push", "stack"]
    assert resolve_tasks("multi") == ["pair_in_bowl", "tower", "all_in_bowl"]
    assert resolve_tasks("all") == list(TASKS)


def test_every_task_has_several_phrasings_that_fit_the_text_space():
    charset = set(sim.tabletop.env.INSTRUCTION_CHARSET)
    for task_id, task in TASKS.items():
        assert len(task.templates) >= 3, task_id
        texts = {task.sample(np.random.default_rng(s)).instruction for s in range(30)}
        assert len(texts) >= 3, (task_id, texts)
        assert all(set(t) <= charset for t in texts), texts


def test_multi_step_tasks_have_2_to_4_subtasks_in_single_step_language():
    single_texts = set()
    for task in TASKS.values():
        if task.group == "single":
            single_texts |= {task.sample(np.random.default_rng(s)).subtasks[0].instruction for s in range(40)}
    for task in TASKS.values():
        if task.group == "multi":
            episode = task.sample(np.random.default_rng(0))
            assert 2 <= len(episode.subtasks) <= 4
            assert {s.instruction for s in episode.subtasks} <= single_texts


@pytest.mark.parametrize("task_id", ["touch", "pick", "place_in_bowl", "push", "stack"])
def test_named_objects_are_the_instructions_cube_then_its_goal(task_id):
    env = make_env(task_id, image_size=32)
    obs, _ = env.reset(seed=5)
    scene, sub = env.unwrapped.scene, env.unwrapped.episode.subtasks[0]
    named = obs[OBS_NAMED]
    assert named.shape == (len(NAMED_OBJECTS_NAMES),) and named.dtype == np.float32
    np.testing.assert_allclose(named[:3], scene.cube_pos(sub.target), atol=1e-6)
    goal = {"touch": lambda: scene.cube_pos(sub.target), "pick": lambda: scene.cube_pos(sub.target),
            "place_in_bowl": scene.bowl_pos, "stack": lambda: scene.cube_pos(sub.dest),
            "push": lambda: np.array([REGION_X, REGION_Y if sub.dest == "left" else -REGION_Y, CUBE_HALF])}[task_id]()
    np.testing.assert_allclose(named[3:], goal, atol=1e-6)
    env.close()


def test_named_objects_follow_the_current_subtask_of_a_multi_step_task():
    env = make_env("tower", image_size=32)
    obs, info = env.reset(seed=0)
    expert = ScriptedExpert(env)
    expert.reset()
    scene, subtasks = env.unwrapped.scene, env.unwrapped.episode.subtasks
    first, second = subtasks[0], subtasks[1]
    assert (first.target, first.dest) != (second.target, second.dest)
    for _ in range(env.spec.max_episode_steps):
        if info["subtask_index"] == 1:
            break
        obs, _, _, _, info = env.step(expert.predict_chunk(obs)[0])
    assert info["subtask_index"] == 1, "the expert finished the first subtask"
    np.testing.assert_allclose(obs[OBS_NAMED][:3], scene.cube_pos(second.target), atol=1e-6)
    np.testing.assert_allclose(obs[OBS_NAMED][3:], scene.cube_pos(second.dest), atol=1e-6)
    env.close()
