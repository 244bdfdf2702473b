"""Meta-World through this project's stack: task ids, the Gymnasium wrapper, seeding, the experts
through the evaluation harness, recording, and the refusals a user meets."""

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from sim import GROUPS, TASKS, make_env, resolve_tasks, scripted_expert
from vla.cli import main
from vla.evaluate import evaluate
from vla.types import ACTION, OBS_ENV_STATE, OBS_STATE, TASK, image_key

CAMERA = image_key("corner2")


def test_tasks_groups_and_sets():
    ids = [t for t in TASKS if t.startswith("metaworld/")]
    assert len(ids) == 50 and "metaworld/push-v3" in ids
    difficulties = [GROUPS[f"metaworld/{d}"] for d in ("easy", "medium", "hard", "very_hard")]
    assert sorted(sum(difficulties, [])) == sorted(ids)  # the four groups split the 50 tasks
    assert [len(g) for g in difficulties] == [28, 11, 6, 5]
    assert resolve_tasks("metaworld/mt50") == ids
    mt10 = resolve_tasks("metaworld/mt10")
    assert len(mt10) == 10 and {"metaworld/reach-v3", "metaworld/push-v3", "metaworld/pick-place-v3"} <= set(mt10)
    assert all(TASKS[t].sets == ("mt10", "mt50") for t in mt10)
    assert TASKS["metaworld/push-v3"].group == "metaworld/hard"
    assert resolve_tasks("pick,metaworld/reach-v3") == ["pick", "metaworld/reach-v3"]  # suites side by side
    assert resolve_tasks("single") == ["touch", "pick", "place_in_bowl", "push", "stack"]  # the tabletop unchanged


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown task id.*'metaworld/fly-v3'.*valid ids: .*metaworld/push-v3"):
        resolve_tasks("metaworld/push-v3,metaworld/fly-v3")
    with pytest.raises(ValueError, match="valid ids: .*metaworld/reach-v3"):
        make_env("metaworld/fly-v3")


def test_wrapper_passes_check_env():
    env = gym.make(TASKS["metaworld/push-v3"].env_id, image_size=32)
    assert env.spec.max_episode_steps == 500
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=False)
    # Gymnasium's one remark is about the privileged 39-value state, whose object entries are unbounded
    # (as Meta-World declares them); none says an observation falls outside its space.
    remarks = {str(w.message) for w in caught}
    assert all("infinity" in r for r in remarks), remarks
    env.close()


def test_observation_keys_and_robot():
    env = make_env("metaworld/reach-v3", image_size=48)
    obs, info = env.reset(seed=0)
    assert sorted(obs) == sorted([CAMERA, OBS_STATE, OBS_ENV_STATE, TASK])
    assert obs[CAMERA].shape == (48, 48, 3) and obs[CAMERA].dtype == np.uint8
    assert obs[OBS_STATE].shape == (4,) and obs[OBS_STATE].dtype == np.float32
    np.testing.assert_allclose(obs[OBS_STATE], obs[OBS_ENV_STATE][:4])  # hand xyz and gripper opening
    assert obs[TASK] == TASKS["metaworld/reach-v3"].instruction == info["task"]
    robot = env.unwrapped.robot
    assert robot.name == "sawyer_metaworld" and robot.action_kinds == ("delta", "delta", "delta", "absolute")
    assert env.metadata["render_fps"] == 80
    env.close()


def test_a_seed_is_one_variation_as_lerobot_seeds_it():
    env = make_env("metaworld/pick-place-v3", image_size=32)
    a = env.reset(seed=3)[0][OBS_ENV_STATE]
    b = env.reset(seed=4)[0][OBS_ENV_STATE]
    c = env.reset(seed=3)[0][OBS_ENV_STATE]
    assert np.array_equal(a, c) and not np.allclose(a, b)
    env.reset(seed=7)
    d = env.reset()[0][OBS_ENV_STATE]  # no seed: the next variation of the seeded sequence
    env.reset(seed=7)
    assert np.array_equal(d, env.reset()[0][OBS_ENV_STATE])
    env.close()
    # LeRobot's own Meta-World env (the published evaluation protocol) gives the same variation per seed.
    from lerobot.envs.metaworld import MetaworldEnv

    theirs = MetaworldEnv("pick-place-v3", observation_width=32, observation_height=32)
    theirs.reset(seed=3)
    np.testing.assert_allclose(theirs._env._get_obs()[:36], a[:36], atol=1e-5)
    theirs.close()


def test_corner_camera_is_upright():
    # The corner cameras are mounted upside down in Meta-World: turned, the table (brown wood) is in
    # the lower half of the image and the floor is not on top. Measured on the raw renders too.
    env = make_env("metaworld/reach-v3", image_size=64)
    image = env.reset(seed=0)[0][CAMERA].astype(float)
    raw = env.unwrapped._renderers["corner2"].render()  # the same scene, as Meta-World's camera sees it
    np.testing.assert_array_equal(image, raw[::-1, ::-1])
    brown = (image[..., 0] > image[..., 2] + 25)  # wood: red well above blue
    assert brown[32:].mean() > brown[:32].mean(), (brown[32:].mean(), brown[:32].mean())
    env.close()


@pytest.mark.parametrize("tasks", ["metaworld/reach-v3,metaworld/push-v3,metaworld/drawer-open-v3"])
def test_scripted_experts_succeed_through_the_harness(tasks):
    report = evaluate("scripted", resolve_tasks(tasks), lambda t: make_env(t, image_size=32), scripted_expert,
                      episodes=3, seed=0, progress=False)
    assert report["overall"]["successes"] == 9, report["failures"]
    assert all(r["mean_steps"] < 200 for r in report["tasks"].values()), report["tasks"]
    # Through the safety filter: the expert's deltas are within bounds, nothing is rejected.
    assert all(s.get("chunks_rejected", 0) == 0 for s in report["safety"].values())


def test_a_panda_policy_is_refused_on_meta_world():
    from tests.helpers import SHIPPED_POLICY
    from vla.loading import policy_factory

    with pytest.raises(ValueError, match=r"does not fit task 'metaworld/reach-v3': cameras \['scene', 'wrist'\], "
                                         r"the env has \['corner2'\]; a state of 8 values, the env gives 4 .*"
                                         r"8 action values, robot 'sawyer_metaworld' takes 4"):
        evaluate("panda", ["metaworld/reach-v3"], lambda t: make_env(t, image_size=32),
                 policy_factory(str(SHIPPED_POLICY)), episodes=1, progress=False)


def test_robots_of_the_other_suite_are_refused():
    with pytest.raises(ValueError, match="robot 'panda' has 8 actions .* a Meta-World task needs 3 hand deltas"):
        make_env("metaworld/reach-v3", robot="panda")
    with pytest.raises(Exception, match="sawyer_metaworld"):
        make_env("pick", robot="sawyer_metaworld")


@pytest.fixture(scope="module")
def reach_recording(tmp_path_factory):
    """Two expert episodes of reach at 32x32, recorded by `vla record`'s function: (root, summary)."""
    from vla.data.record import record

    root = tmp_path_factory.mktemp("mw") / "mw"
    return root, record(["metaworld/reach-v3"], 2, root, image_size=32, progress=False, seed=0)


def test_record_two_episodes_read_back_by_lerobot(reach_recording):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root, summary = reach_recording
    assert summary["episodes"] == 2 and summary["tasks"]["metaworld/reach-v3"]["failed"] == 0
    ds = LeRobotDataset("local/mw", root=root)
    assert ds.fps == 80 and ds.meta.robot_type == "sawyer_metaworld" and ds.num_episodes == 2
    assert ds.features[OBS_STATE]["names"] == ["hand_x", "hand_y", "hand_z", "gripper_opening"]
    assert ds.features[ACTION]["names"] == ["hand_dx", "hand_dy", "hand_dz", "gripper"]
    assert "subtask" not in ds.features and ds.features[OBS_ENV_STATE]["shape"] == (39,)
    frame = ds[0]
    assert frame[TASK] == TASKS["metaworld/reach-v3"].instruction
    assert frame[CAMERA].shape == (3, 32, 32)
    actions = np.stack([ds[i][ACTION].numpy() for i in range(ds.num_frames)])
    assert np.all(np.abs(actions) <= 1.0) and np.abs(actions[:, :3]).max() > 0.5  # the expert moved the hand


def test_the_open_loop_floor_holds_still_as_the_safety_filter_does(reach_recording):
    """`vla eval --heldout` compares a policy with one that holds the robot still. For deltas that is
    0 and the gripper's previous command, never the hand's position read as an action."""
    from vla.control.safety import SafetyFilter
    from vla.data import open_dataset
    from vla.train.data import DemoCache
    from vla.train.validate import dataset_robot, hold_still

    demo = open_dataset(reach_recording[0])
    robot = dataset_robot(demo)  # from the dataset's robot_type
    assert robot.name == "sawyer_metaworld"
    cache = DemoCache.from_dataset(demo, 2, 32, progress=False)
    hold, actions = hold_still(demo, cache, robot).numpy(), cache.actions.numpy()
    episode = np.asarray(demo.lerobot.hf_dataset.with_format(None)["episode_index"]).reshape(-1)
    starts = np.flatnonzero(np.r_[True, episode[1:] != episode[:-1]])
    assert list(starts) == [0, int((episode == 0).sum())]
    safety = SafetyFilter(robot)
    for i in range(len(hold)):
        expected = safety.hold_action(None, None if i in starts else actions[i - 1])
        np.testing.assert_array_equal(hold[i], expected.astype(np.float32), err_msg=f"frame {i}")
    assert np.all(hold[:, :3] == 0) and np.all(hold[starts, 3] == -1.0)
    assert np.any(hold[:, 3] != -1.0)  # the expert closed the gripper at some point: held at its command

    with pytest.raises(ValueError, match=r"robot 'panda' has actions \['joint1'.*the dataset's are \['hand_dx'"):
        dataset_robot(demo, "panda")
    demo.robot_type = "a_robot_without_a_config"
    with pytest.raises(ValueError, match=r"actions \['hand_dx', .* are not its state's values .* pass --robot"):
        dataset_robot(demo)
    assert dataset_robot(demo, "sawyer_metaworld").name == "sawyer_metaworld"


def test_one_dataset_holds_one_robot(tmp_path):
    with pytest.raises(ValueError, match="one dataset holds one robot's episodes"):
        from vla.data.record import record

        record(["pick", "metaworld/reach-v3"], 1, tmp_path / "mixed", image_size=32, progress=False)


@pytest.mark.slow  # records, trains and rolls out a 500-step episode
def test_the_vla_trains_on_meta_world_and_runs_its_tasks(tmp_path, capsys):
    from tests.vla.helpers import TRAIN_MINI
    from vla.data.record import record
    from vla.loading import policy_factory
    from vla.train.trainer import TrainConfig, train

    record(["metaworld/reach-v3"], 2, tmp_path / "mw", image_size=32, progress=False, seed=0)
    out = tmp_path / "policy"
    summary = train(tmp_path / "mw", out, "tiny", TrainConfig(steps=4, batch_size=4, warmup_steps=1, log_every=2),
                    progress=False, model_overrides=TRAIN_MINI)
    assert summary["steps"] == 4
    # Deltas are not the state's values: the policy predicts them as they are, not relative to the hand.
    assert "predicted absolute" in capsys.readouterr().err
    policy = policy_factory(str(out))(None)
    assert policy.model.config.action_reference == "absolute" and policy.metadata["cameras"] == ["corner2"]
    report = evaluate(str(out), ["metaworld/reach-v3"], lambda t: make_env(t, image_size=32), policy_factory(str(out)),
                      episodes=1, progress=False)
    assert report["overall"]["episodes"] == 1 and report["tasks"]["metaworld/reach-v3"]["mean_steps"] > 0
    # Every action a 4-step model proposes went through the filter; none had to be refused.
    assert report["safety"]["metaworld/reach-v3"].get("chunks_rejected", 0) == 0
    # Open loop on the demonstrations: the hold-still floor is the deltas' own size (holding is 0).
    assert main(["eval", "--policy", str(out), "--heldout", str(tmp_path / "mw"), "--report",
                 str(tmp_path / "open_loop.json")]) == 0
    loop = json.loads((tmp_path / "open_loop.json").read_text())
    actions = _actions(tmp_path / "mw")
    assert loop["action_names"] == ["hand_dx", "hand_dy", "hand_dz", "gripper"]
    assert loop["hold_still"]["arm_mrad_first"] == pytest.approx(np.abs(actions[:, :3]).mean() * 1e3, abs=0.01)
    assert np.isfinite(loop["arm_mrad_first"]) and loop["frames"] == len(actions)


def _actions(root) -> np.ndarray:
    from vla.data import open_dataset

    return np.asarray(open_dataset(root).lerobot.hf_dataset.with_format(None)[ACTION], dtype=np.float32)


def test_bad_actions_are_refused_and_out_of_bounds_ones_limited():
    env = make_env("metaworld/reach-v3", image_size=16)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"non-finite targets for \['hand_dy'\]"):
        env.step(np.array([0.0, np.nan, 0.0, 0.0], np.float32))
    with pytest.raises(ValueError, match=r"shape \(8,\); expected \(4,\)"):
        env.step(np.zeros(8, np.float32))
    assert env.step(np.array([0.0, 0.0, 3.0, 0.0], np.float32))[4]["action_clipped"]
    assert not env.step(np.zeros(4, np.float32))[4]["action_clipped"]
    env.close()


@pytest.mark.slow  # trains a LeRobot policy two steps, then a 500-step episode
def test_a_lerobot_peer_trains_on_meta_world_and_runs_its_tasks(reach_recording, tmp_path):
    """`vla bench peers --tasks metaworld/...`: LeRobot's ACT on the Sawyer's deltas, through our harness."""
    from vla.peers import LeRobotPolicy
    from vla.peers.train import train_peer

    out = tmp_path / "act"
    summary = train_peer("act", reach_recording[0], out, steps=2, batch_size=4, progress=False)
    assert summary["steps"] == 2 and np.isfinite(summary["final_loss"])
    policy = LeRobotPolicy.from_pretrained(out, device="cpu")
    assert policy.metadata["cameras"] == ["corner2"] and policy.metadata["action_dim"] == 4
    assert OBS_ENV_STATE not in policy.policy.config.input_features  # the privileged 39-vector stays out
    report = evaluate(str(out), ["metaworld/reach-v3"], lambda t: make_env(t, image_size=32),
                      lambda env: LeRobotPolicy.from_pretrained(out, device="cpu"), episodes=1, progress=False)
    assert report["overall"]["episodes"] == 1 and report["tasks"]["metaworld/reach-v3"]["mean_steps"] > 0
    assert report["safety"]["metaworld/reach-v3"].get("chunks_rejected", 0) == 0
