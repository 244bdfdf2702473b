import numpy as np
import pytest

from sim import make_env
from sim.tabletop import TASKS
from sim.tabletop.experts import ScriptedExpert


def _solve(env, seed):
    expert = ScriptedExpert(env)
    obs, info = env.reset(seed=seed)
    expert.reset()
    indices = [info["subtask_index"]]
    while True:
        obs, _, terminated, truncated, info = env.step(expert.predict_chunk(obs)[0])
        indices.append(info["subtask_index"])
        if terminated or truncated:
            return info, indices


@pytest.mark.parametrize("task_id", list(TASKS))
def test_expert_solves_task_without_sim_warnings(task_id):
    env = make_env(task_id, image_size=32)
    for seed in (100, 101):
        info, indices = _solve(env, seed)
        assert info["success"], (task_id, seed, info["task"], info["scene_description"])
        assert indices[-1] == len(info["subtasks"])
        # Subtasks complete in order: the index reaches 1, 2, ... one after the other, none skipped.
        # (It may dip for a tick at a release, when the cube bounces against a pad: the truth.)
        first_reach = [indices.index(i) for i in range(len(info["subtasks"]) + 1)]
        assert first_reach == sorted(first_reach)
        assert env.unwrapped.scene.warnings() == {}
    env.close()


def test_grasp_holds_by_friction_only():
    """Opening the fingers after a successful pick drops the cube: nothing welds it."""
    env = make_env("pick", image_size=32)
    info, _ = _solve(env, seed=5)
    assert info["success"]
    scene = env.unwrapped.scene
    color = next(c for c in ("red", "green", "blue") if c in info["task"])
    assert scene.cube_pos(color)[2] > 0.08
    release = scene.joint_positions().astype(np.float64)
    release[-1] = env.unwrapped.robot.gripper.upper
    for _ in range(10):
        scene.step(release)
    assert scene.cube_pos(color)[2] < 0.03
    assert not scene.is_held(color)


def test_skills_follow_the_subtask_they_are_told():
    """SkillExpert executes whatever subtask the observation's task names, in any order it is told."""
    from sim.tabletop.experts import SkillExpert

    env = make_env("tower", image_size=32)
    skills = SkillExpert(env)
    obs, info = env.reset(seed=7)
    skills.reset()
    for _ in range(240):  # the task's time limit
        obs["task"] = info["subtasks"][min(info["subtask_index"], len(info["subtasks"]) - 1)]
        obs, _, terminated, truncated, info = env.step(skills.predict_chunk(obs)[0])
        if terminated or truncated:
            break
    assert info["success"], info["scene_description"]
    # An instruction that is no subtask holds the arm where it is.
    obs, info = env.reset(seed=8)
    skills.reset()
    q0 = obs["observation.state"].copy()
    for _ in range(5):
        obs["task"] = "build something nice"
        obs, *_ = env.step(skills.predict_chunk(obs)[0])
    assert skills.metadata["unparsed"] == 1
    assert np.abs(obs["observation.state"] - q0).max() < 1e-2


def test_a_displaced_cube_is_where_it_was_put():
    from sim.tabletop.scene import ObjectPose
    from sim.tabletop.tasks import free_spot

    env = make_env("pair_in_bowl", image_size=32)
    env.reset(seed=0)
    pose = free_spot(env.unwrapped.scene, "red", np.random.default_rng(0))
    obs = env.unwrapped.displace("red", ObjectPose(pose.x, pose.y, pose.yaw))
    for _ in range(5):
        obs, *_ = env.step(obs["observation.state"])
    assert np.allclose(env.unwrapped.scene.cube_pos("red")[:2], [pose.x, pose.y], atol=5e-3)


def test_the_grasp_yaw_is_a_continuous_function_of_the_scene():
    """Cubes start at yaws the expert maps to grasp yaws without a jump: sweeping a cube's yaw
    over the whole sampled range moves the grasp yaw by the same small steps (a 90 degree jump
    at +-45 degrees, where a cube looks the same both ways, would teach two answers to one scene)."""
    from sim.tabletop.scene import ObjectPose
    from sim.tabletop.tasks import CUBE_YAW

    env = make_env("pick", image_size=32)
    env.reset(seed=0)
    expert = ScriptedExpert(env)
    scene = env.unwrapped.scene
    sweep = np.linspace(-CUBE_YAW, CUBE_YAW, 141)
    grasp = []
    for yaw in sweep:
        scene.place_cube("red", ObjectPose(0.5, 0.0, float(yaw)))
        grasp.append(expert._grasp_yaw("red"))
    steps = np.abs(np.diff(grasp))
    assert steps.max() <= 2 * (sweep[1] - sweep[0]), np.degrees(steps.max())
    assert np.degrees(CUBE_YAW) <= 40  # sampled yaws stay clear of the +-45 degree ambiguity
    yaws = []
    for seed in range(40):
        env.reset(seed=seed)
        yaws += [scene.cube_yaw(c) for c in ("red", "green", "blue")]
    assert max(np.abs(yaws)) <= CUBE_YAW + 1e-3
    env.close()


def test_a_recovery_demonstration_starts_off_course_in_the_seeds_scene_and_succeeds():
    from vla.data.record import check_detours, expert_episode
    from vla.types import OBS_ENV_STATE

    env = make_env("pick", image_size=32)
    expert = ScriptedExpert(env)
    plain, plain_ok = expert_episode(env, expert, 1000)
    detour, detour_ok = expert_episode(env, expert, 1000, detours=1.0)
    assert plain_ok and detour_ok
    start, moved = plain[0][OBS_ENV_STATE], detour[0][OBS_ENV_STATE]  # cubes (3 x xyz), bowl (xy), TCP (xyz)
    np.testing.assert_allclose(moved[:-3], start[:-3], atol=2e-3)  # the seed's scene, the cube put back
    assert np.linalg.norm(moved[-3:] - start[-3:]) > 0.05  # the arm is elsewhere
    assert moved[-1] < start[-1] - 0.05  # and lower: on its way down to the wrong place
    again, _ = expert_episode(env, expert, 1000, detours=1.0)  # chosen by the seed
    np.testing.assert_array_equal(again[0]["observation.state"], detour[0]["observation.state"])
    # the way back starts where the arm is: the first command is one of the expert's own steps away
    first_step = np.abs(detour[0]["action"][:-1] - detour[0]["observation.state"][:-1]).max()
    own_steps = np.abs(np.diff([f["action"][:-1] for f in plain], axis=0)).max()
    assert first_step <= own_steps + 0.05
    env.close()
    with pytest.raises(ValueError, match=r"detours=1.5.*\[0, 1\]"):
        check_detours(expert, 1.5)
    with pytest.raises(ValueError, match="has no recovery detours"):
        check_detours(object(), 0.5)


def _step_expert_until(env, expert, obs, stop, limit=80):
    for _ in range(limit):
        obs, _, terminated, truncated, info = env.step(expert.predict_chunk(obs)[0])
        assert not (terminated or truncated)
        if stop():
            return obs
    raise AssertionError("the condition never held")


def _finish(env, expert, obs):
    actions = []
    while True:
        actions.append(expert.predict_chunk(obs)[0])
        obs, _, terminated, truncated, info = env.step(actions[-1])
        if terminated or truncated:
            return info, np.array(actions)


def test_the_expert_takes_over_a_held_cube_without_letting_go():
    """Taken over mid-grasp (the cube between the fingers, lifting), the expert plans from the measured
    grasp state: it keeps the fingers closed and finishes, where a fresh plan from the start would open
    them and grasp again."""
    for task, seed in (("pick", 11), ("place_in_bowl", 12)):
        env = make_env(task, image_size=32)
        obs, info = env.reset(seed=seed)
        expert = ScriptedExpert(env)
        expert.reset()
        scene, color = env.unwrapped.scene, env.unwrapped.episode.subtasks[0].target
        obs = _step_expert_until(env, expert, obs, lambda s=scene, c=color: s.is_held(c) and s.cube_pos(c)[2] > 0.03)
        expert.reset()  # the takeover: a new expert plan from the scene as it is
        assert expert.cannot_act() is None
        info, actions = _finish(env, expert, obs)
        assert info["success"], (task, info["scene_description"])
        closed = env.unwrapped.robot.gripper.lower
        opened = np.flatnonzero(actions[:, -1] > closed + 1e-6)
        # the fingers stay shut until the release over the bowl (place) or to the end (pick)
        assert (task == "pick" and len(opened) == 0) or (task != "pick" and opened[0] > 5), actions[:, -1]
        env.close()


def test_the_expert_recovers_when_the_arm_is_pushed_off_its_path():
    """The arm pushed off course mid-approach (three ticks of a command 0.25 rad off on the shoulder and the
    elbow) and mid-grasp: the expert, taking over from the measured state, heads back and succeeds."""
    for task, seed, when in (("place_in_bowl", 21, "approach"), ("pick", 22, "grasp"), ("stack", 23, "approach")):
        env = make_env(task, image_size=32)
        obs, info = env.reset(seed=seed)
        expert = ScriptedExpert(env)
        expert.reset()
        scene, color = env.unwrapped.scene, env.unwrapped.episode.subtasks[0].target
        cube = scene.cube_pos(color)
        if when == "approach":
            near = lambda s=scene, p=cube: np.linalg.norm(s.tcp_pos()[:2] - p[:2]) < 0.15  # noqa: E731
            obs = _step_expert_until(env, expert, obs, near)
        else:  # the fingers around the cube, closing
            obs = _step_expert_until(env, expert, obs, lambda s=scene, p=cube: s.tcp_pos()[2] < p[2] + 0.02)
        push = obs["observation.state"].astype(np.float64)
        push[[1, 3]] += 0.25
        before = scene.tcp_pos()
        for _ in range(3):
            obs, *_ = env.step(push)
        pushed = scene.tcp_pos()
        assert np.linalg.norm(pushed - before) > 0.03  # the push moved the arm
        expert.reset()
        # the first command points back: its TCP is nearer the cube than where the push left the arm
        first = expert.predict_chunk(obs)[0]
        commanded, _ = expert._ik.forward(first[:-1].astype(np.float64))
        goal = scene.cube_pos(color)
        assert np.linalg.norm(commanded[:2] - goal[:2]) <= np.linalg.norm(pushed[:2] - goal[:2]) + 1e-3
        obs, _, terminated, truncated, info = env.step(first)
        info, _ = _finish(env, expert, obs)
        assert info["success"], (task, when, info["scene_description"])
        env.close()


def test_the_expert_says_when_it_cannot_act():
    from sim.tabletop.experts import REACH
    from sim.tabletop.scene import ObjectPose

    env = make_env("stack", image_size=32)
    env.reset(seed=3)
    expert = ScriptedExpert(env)
    scene, sub = env.unwrapped.scene, env.unwrapped.episode.subtasks[0]
    assert expert.cannot_act() is None
    env.unwrapped.displace(sub.dest, ObjectPose(REACH[1] + 0.05, 0.0, 0.0))  # the cube below, out of reach
    assert f"the {sub.dest} cube is out of reach" in expert.cannot_act()
    env.reset(seed=3)
    adr = env.unwrapped.scene.model.joint(f"{sub.target}_cube").qposadr[0]
    scene.data.qpos[adr: adr + 3] = (1.2, 0.0, -0.3)  # knocked off the table
    import mujoco
    mujoco.mj_forward(scene.model, scene.data)
    assert f"the {sub.target} cube fell off the table" in expert.cannot_act()
    env.close()
