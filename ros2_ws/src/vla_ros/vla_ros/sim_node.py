"""MuJoCo sim node: the tabletop behind the same topics as a real ros2_control arm.

Publishes joint_states and the robot config's camera topics, obeys the controller command
topic (JointTrajectory or Float64MultiArray), so a policy node cannot tell sim from robot.
Every topic is relative (namespace:=robot1 moves them all) except /clock, which rclpy's time
source reads from the root. Also publishes the episode's instruction (latched) and task success;
~/reset and the vla/sim/task topic ("task_id" or "task_id:seed") start a new episode.

An episode ends at the task's success or after `max_steps`; its outcome (task, seed, success,
steps) is logged and published on ~/episode. With `seeds` ("0-4,7") the node runs one episode
per seed back to back, then logs and publishes a summary on ~/summary, publishes an empty instruction
(nothing to do: a policy node holds) and exits when `exit_when_done`; otherwise it goes on simulating
the arm at rest in real time, joint states, cameras and /clock included, so that no node on sim time
goes silent.

With `wait_for_policy` the first episode starts only once a policy node says it is connected
(vla/policy_ready, latched): until then the arm stands, steps are not counted, and the observations
(and /clock) go on, so that the policy node can connect. After `policy_timeout_s` without one the node
logs what is missing and exits with status 1. Free-running, a command stamped before the running
episode began (computed for the previous one, in flight at the reset) is ignored and counted.

With `lockstep` the sim waits for its controller: it publishes the observation of tick t (joint
states and cameras stamped with simulated time t, then /clock = t) and steps only when the command
answering it arrives (a JointTrajectory stamped t; any Float64MultiArray, which has no stamp), so an
episode unfolds as `vla eval` runs it, however slow inference is. Until the first command arrives
the observation is re-published every second (the controller may not be up yet); afterwards a tick
without an answer for `lockstep_timeout_s` (wall clock) steps with the last target and is reported
(log, and `lockstep_timeouts` in the episode's outcome).
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from vla_ros.conversions import CONTROLLER_TYPES, command_to_array, command_type, default_command_topic, image_to_msg
from vla_ros.parameters import COMMAND_TOPIC, ROBOT_CONFIG, Spec, StartupError, declare, relative, robot_config
from vla_ros.spin import spin

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
OUTCOMES = QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL)  # a late subscriber sees them all

# Each parameter's default is in the vla package's configs/ros/sim_node.yaml (parameters.PARAMETER_DIR).
PARAMETERS: Spec = {
    **ROBOT_CONFIG,
    "task": (str, "task id of the first episode (vla tasks lists them)", True),
    "seed": (int, "seed of the first episode (when `seeds` is empty)", True),
    "seeds": (str, "seeds to run back to back, e.g. '0-4,7' (empty: one free-running episode from `seed`)", True),
    "max_steps": (int, "steps after which an episode ends as a failure (0: the task's own limit)", True),
    "exit_when_done": (bool, "with `seeds`: exit after the summary (else the arm rests and the sim goes on "
                             "publishing)", True),
    "wait_for_policy": (bool, "start the first episode only when a policy node is connected (vla/policy_ready)",
                        True),
    "policy_timeout_s": (float, "with wait_for_policy: exit with status 1 when no policy is ready after this many "
                                "seconds", True),
    "speed": (float, "simulated seconds per wall-clock second (1.0: real time), 0.05..100", True),
    "publish_clock": (bool, "publish simulated time on /clock (for nodes started with use_sim_time)", True),
    "controller_type": (str, f"command message type the sim obeys: one of {CONTROLLER_TYPES}", True),
    **COMMAND_TOPIC,
    "image_size": (int, "square camera image size (0: the robot config's camera sizes)", True),
    "expert": (bool, "the scripted expert drives the arm through the command topic, as a teleoperator", True),
    "lockstep": (bool, "step one tick only when the command answering the last observation has arrived "
                       "(publishes /clock; for tests and evaluation, not for a robot)", True),
    "lockstep_timeout_s": (float, "lockstep: wall-clock seconds to wait for a tick's command before stepping "
                                  "with the last target (reported)", True),
}
REPUBLISH_S = 1.0  # lockstep, before the first command: how often the waiting observation is sent again


def parse_seeds(text: str) -> list[int]:
    """'0-4,7' -> [0, 1, 2, 3, 4, 7]; '' -> []."""
    seeds: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        first, dash, last = part.partition("-")
        try:
            seeds += list(range(int(first), int(last) + 1)) if dash else [int(first)]
        except ValueError:
            raise StartupError(f"seeds={text!r}: expected integers and ranges like '0-4,7'") from None
    return seeds


class SimNode(Node):
    def __init__(self, **kwargs):
        super().__init__("sim", **kwargs)
        os.environ.setdefault("MUJOCO_GL", "egl")
        from sim.tabletop.env import TabletopEnv
        from sim.tabletop.tasks import get_task

        self._Env = TabletopEnv
        p = declare(self, PARAMETERS, "sim_node", dynamic=("seeds",))
        if self.get_parameter("use_sim_time").value:
            raise StartupError("use_sim_time=true: the sim node is the clock source; set publish_clock:=true instead")
        self.robot = robot_config(p["robot_config"])
        self.controller_type = p["controller_type"]
        if self.controller_type not in CONTROLLER_TYPES:
            raise StartupError(f"controller_type={self.controller_type!r}; expected one of {CONTROLLER_TYPES}")
        speed = float(p["speed"])
        if not 0.05 <= speed <= 100:
            raise StartupError(f"speed={speed}; expected 0.05..100")
        if p["max_steps"] < 0:
            raise StartupError(f"max_steps={p['max_steps']}; expected 0 (the task's limit) or a positive number")
        if p["lockstep"] and p["expert"]:
            raise StartupError("lockstep:=true with expert:=true: the expert drives the sim itself; use one of them")
        if not p["policy_timeout_s"] > 0:
            raise StartupError(f"policy_timeout_s={p['policy_timeout_s']}; expected a positive number of seconds")
        if not p["lockstep_timeout_s"] > 0:
            raise StartupError(f"lockstep_timeout_s={p['lockstep_timeout_s']}; expected a positive number of seconds")
        try:
            get_task(p["task"])
        except ValueError as exc:
            raise StartupError(f"task: {exc}") from None
        self.p = p
        self.queue = parse_seeds(p["seeds"])  # seeds still to run (the first one starts below)
        self.outcomes: list[dict] = []
        self.names = self.robot.joint_names
        self.period = 1.0 / self.robot.control_rate_hz
        topic = p["command_topic"] or relative(default_command_topic(self.controller_type,
                                                                     self.robot.controller.command_topic))
        self.create_subscription(command_type(self.controller_type), topic, self._on_command, 10)
        self.expert = None
        if p["expert"]:
            self.expert_pub = self.create_publisher(command_type(self.controller_type), topic, 10)
        self.create_subscription(String, "vla/sim/task", self._on_task, 10)
        self.joint_pub = self.create_publisher(JointState, relative(self.robot.controller.state_topic), 10)
        self.image_pubs = {c.name: self.create_publisher(Image, relative(c.topic), qos_profile_sensor_data)
                           for c in self.robot.cameras}
        self.instruction_pub = self.create_publisher(String, "vla/instruction", LATCHED)
        self.success_pub = self.create_publisher(Bool, "vla/task_success", LATCHED)
        self.episode_pub = self.create_publisher(String, "~/episode", OUTCOMES)
        self.summary_pub = self.create_publisher(String, "~/summary", LATCHED)
        # /clock stays absolute: rclpy's and rclcpp's time sources subscribe to it there.
        self.clock_pub = self.create_publisher(Clock, "/clock", 10) if p["publish_clock"] or p["lockstep"] else None
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.waiting_since = time.monotonic()
        self.policy_ready = not p["wait_for_policy"] or bool(p["lockstep"])  # lockstep waits for commands anyway
        if not self.policy_ready:
            self.create_subscription(Bool, "vla/policy_ready", self._on_policy_ready, LATCHED)
        self.done = False  # the list of seeds is done: the arm rests
        self.stale_commands = 0  # free-running: commands made before the running episode began
        self.episode_stamp = (0, 0)
        self.commands_rejected = 0
        self.lockstep = bool(p["lockstep"])
        self.awaiting = None  # lockstep: the stamp of the observation whose command the sim waits for
        self.commanded = False  # lockstep: a command has answered an observation (the controller is up)
        self.timeouts = 0  # lockstep: ticks stepped without their command, this episode
        self.sim_time = 0.0
        self.env = None
        self.ended = True  # no episode yet
        # From the parsed list, not the parameter: `seeds:=0` arrives as the integer 0, which is falsy.
        self.running_list = bool(self.queue)
        first = self.queue.pop(0) if self.queue else int(p["seed"])
        self._start(p["task"], first)
        if self.lockstep:  # the commands drive the steps; this timer only watches for a silent controller
            self.timer = self.create_timer(0.1, self._lockstep_wait)
            self._publish_observation()
        else:
            self.timer = self.create_timer(self.period / speed, self._tick)

    def close(self) -> None:
        """Free the renderers while their EGL display is alive: left to the garbage collector at exit,
        MuJoCo 3.3's renderer prints a traceback from `__del__` (seen in the signal tests)."""
        if self.env is not None:
            self.env.close()
            self.env = None

    # --- episodes --------------------------------------------------------------------------------
    def _start(self, task: str, seed: int) -> None:
        if not self.ended:
            self._end(success=bool(self.succeeded), why="replaced")
        size = int(self.p["image_size"]) or None
        if self.env is None or self.env.spec_task.id != task:
            if self.env is not None:
                self.env.close()
            self.env = self._Env(task=task, robot=self.robot, image_size=size)
        self.obs, self.info = self.env.reset(seed=seed)
        self.seed, self.steps, self.ended, self.timeouts, self.done = seed, 0, False, 0, False
        self.stale_commands = 0
        self.max_steps = int(self.p["max_steps"]) or self.env.spec_task.max_steps
        if self.p["expert"]:
            from sim.tabletop.experts import ScriptedExpert

            self.expert = ScriptedExpert(self.env)
            self.expert.reset()
        self.target = self.obs["observation.state"].astype(np.float64)
        self.instruction_pub.publish(String(data=self.info["task"]))
        self.succeeded = False
        self.success_pub.publish(Bool(data=False))
        if self.lockstep:  # the policy node takes the new instruction before the episode's first observation
            self.instruction_pub.wait_for_all_acked(Duration(seconds=5.0))
        else:  # commands made from here on are this episode's; its first observation goes out at once
            if self.clock_pub is not None:
                self.sim_time += self.period
            self.episode_stamp = self._publish_observation()
        self.get_logger().info(f"episode: task={task} seed={seed}: {self.info['task']!r}")

    def _end(self, success: bool, why: str) -> None:
        """Log and publish the outcome of the running episode; with `seeds`, go on to the next one."""
        self.ended = True
        outcome = {"task": self.env.spec_task.id, "seed": self.seed, "success": success, "steps": self.steps,
                   "instruction": self.info["task"], "ended_by": why}
        if self.lockstep:
            outcome["lockstep_timeouts"] = self.timeouts
        else:
            outcome["stale_commands"] = self.stale_commands
        self.outcomes.append(outcome)
        self.episode_pub.publish(String(data=json.dumps(outcome)))
        self.get_logger().info(f"episode done: task={outcome['task']} seed={self.seed} success={success} "
                               f"steps={self.steps} ({why})")
        if not self.running_list:
            return
        if self.queue:
            self._start(self.env.spec_task.id, self.queue.pop(0))
            return
        self._summary()

    def _summary(self) -> None:
        wins = sum(o["success"] for o in self.outcomes)
        summary = {"task": self.env.spec_task.id, "episodes": len(self.outcomes), "successes": wins,
                   "success_rate": wins / len(self.outcomes),
                   "outcomes": [{k: o[k] for k in ("seed", "success", "steps")} for o in self.outcomes]}
        self.summary_pub.publish(String(data=json.dumps(summary)))
        per_seed = ", ".join(f"{o['seed']}:{'ok' if o['success'] else 'fail'}({o['steps']})" for o in self.outcomes)
        self.get_logger().info(f"summary: task={summary['task']} {wins}/{len(self.outcomes)} succeeded; {per_seed}")
        self.running_list, self.awaiting, self.done = False, None, True
        self.instruction_pub.publish(String(data=""))  # nothing more to do: a policy node holds the arm
        if self.p["exit_when_done"]:
            self.timer.cancel()
            for pub in (self.episode_pub, self.summary_pub):  # subscribers get them before the process is gone
                pub.wait_for_all_acked(Duration(seconds=5.0))
            raise SystemExit(0)
        if self.lockstep:  # the arm rests in real time now: no node on /clock may go silent
            self.lockstep = False
            self.timer.cancel()
            self.timer = self.create_timer(self.period / float(self.p["speed"]), self._tick)
        self.get_logger().info("the list of seeds is done: the arm rests; joint states, cameras and /clock go on")

    # --- inputs ----------------------------------------------------------------------------------
    def _on_command(self, msg) -> None:
        answers = self._answers(msg)
        if self.lockstep and not answers:
            return  # late (its tick was stepped without it) or not for this sim
        stamp = getattr(msg, "header", None)
        if not self.lockstep and stamp is not None and (stamp.stamp.sec, stamp.stamp.nanosec) != (0, 0) \
                and (stamp.stamp.sec, stamp.stamp.nanosec) < self.episode_stamp:
            self.stale_commands += 1  # made for the previous episode, in flight at the reset
            return
        try:
            target = command_to_array(msg, self.names)
            if not np.all(np.isfinite(target)):
                raise ValueError("non-finite target")
        except ValueError as exc:
            self.commands_rejected += 1
            self.get_logger().warning(f"command ignored: {exc}")
        else:
            self.target = target
        if self.lockstep:  # even an ignored command answers its tick: the sim holds the last target
            self.commanded = True
            self._lockstep_step()

    def _answers(self, msg) -> bool:
        """Lockstep: does `msg` answer the observation the sim waits for?"""
        if self.awaiting is None:
            return False
        stamp = getattr(msg, "header", None)
        return stamp is None or (stamp.stamp.sec, stamp.stamp.nanosec) == self.awaiting

    def _on_task(self, msg: String) -> None:
        if self.running_list:
            self.get_logger().warning(f"running the seeds {self.p['seeds']!r}: vla/sim/task {msg.data!r} ignored")
            return
        task, _, seed = msg.data.partition(":")
        try:
            self._start(task.strip(), int(seed) if seed else self.seed + 1)
        except ValueError as exc:
            self.get_logger().error(str(exc))
            return
        self._restarted()

    def _on_reset(self, request, response):
        if self.running_list:
            response.success, response.message = False, f"running the seeds {self.p['seeds']!r}"
            return response
        self._start(self.env.spec_task.id, self.seed + 1)
        self._restarted()
        response.success, response.message = True, self.info["task"]
        return response

    # --- loop ------------------------------------------------------------------------------------
    def _on_policy_ready(self, msg: Bool) -> None:
        if msg.data and not self.policy_ready:
            self.policy_ready = True
            waited = time.monotonic() - self.waiting_since
            self.get_logger().info(f"policy ready after {waited:.1f} s: episode task={self.env.spec_task.id} "
                                   f"seed={self.seed} starts now")
            self.ended = True  # not run yet: not an outcome
            self._start(self.env.spec_task.id, self.seed)  # from its first step, its arm as reset

    def _wait_for_policy(self) -> None:
        """Before a policy is ready: the arm stands, observations and /clock go on; after the timeout, exit 1."""
        waited = time.monotonic() - self.waiting_since
        if waited > self.p["policy_timeout_s"]:
            topic = self.resolve_topic_name("vla/policy_ready")
            self.get_logger().fatal(
                f"no policy ready after {waited:.0f} s (nothing said true on {topic}):"
                " is the policy node running, and its policy server (policy_server, `vla serve`) up at the "
                "address it connects to? Exiting.")
            raise SystemExit(1)
        self.get_logger().info("waiting for a policy node to connect (vla/policy_ready) before the first episode",
                               throttle_duration_sec=5.0)
        if self.clock_pub is not None:
            self.sim_time += self.period
        self._publish_observation()

    def _tick(self) -> None:
        """Real time: step with the latest command, then publish what the arm and cameras see."""
        if not self.policy_ready:
            self._wait_for_policy()
            return
        if self.expert is not None and not self.done:
            from vla_ros.conversions import command_msg

            action = self.expert.predict_chunk(self.obs)[0]
            self.expert_pub.publish(command_msg(self.controller_type, self.names, action, self.period))
            self.target = action.astype(np.float64)
        self._step()
        self._publish_observation()

    def _step(self) -> None:
        self.obs, _, _, _, self.info = self.env.step(self.target)
        self.sim_time += self.period
        if self.done:  # the list is done: the arm rests, nothing is counted
            return
        self.steps += 1
        if self.info["success"] != self.succeeded:
            self.succeeded = bool(self.info["success"])
            self.success_pub.publish(Bool(data=self.succeeded))
        if not self.ended and (self.succeeded or self.steps >= self.max_steps):
            self._end(success=self.succeeded, why="success" if self.succeeded else f"max_steps={self.max_steps}")

    def _publish_observation(self) -> tuple[int, int]:
        """Joint states and images of `self.obs`, stamped with sim time (with /clock) or wall time; then /clock.
        Returns the stamp (sec, nanosec)."""
        stamp = self.get_clock().now().to_msg()
        clock = None
        if self.clock_pub is not None:
            clock = Clock()
            clock.clock.sec, clock.clock.nanosec = divmod(round(self.sim_time * 1e9), 1_000_000_000)
            stamp = clock.clock
        state = JointState(name=list(self.names), position=[float(v) for v in self.obs["observation.state"]])
        state.header.stamp = stamp
        self.joint_pub.publish(state)
        for cam, pub in self.image_pubs.items():
            pub.publish(image_to_msg(self.obs[f"observation.images.{cam}"], stamp, cam))
        if clock is not None:
            self.clock_pub.publish(clock)
        if self.lockstep:
            self.awaiting, self.waiting_since = (stamp.sec, stamp.nanosec), time.monotonic()
        return stamp.sec, stamp.nanosec

    def _restarted(self) -> None:
        """Lockstep: a new episode began between ticks: a command for the old observation must not step it."""
        if self.lockstep:
            self.sim_time += self.period
            self._publish_observation()

    def _lockstep_step(self) -> None:
        """Lockstep: the tick's command is in (or given up on): step once and publish the next observation."""
        self.awaiting = None
        self._step()
        if self.done:  # the list of seeds is done: the real-time timer publishes from now on
            return
        self._publish_observation()

    def _lockstep_wait(self) -> None:
        if self.awaiting is None:
            return
        waited = time.monotonic() - self.waiting_since
        if not self.commanded:  # no controller yet: it may have missed the observation
            if waited >= REPUBLISH_S:
                self._publish_observation()
            return
        if waited >= self.p["lockstep_timeout_s"]:
            self.timeouts += 1
            self.get_logger().warning(f"lockstep: no command for step {self.steps} of seed {self.seed} after "
                                      f"{waited:.1f} s; stepping with the last target ({self.timeouts} this episode)")
            self._lockstep_step()


def main(args=None):
    spin(SimNode, args, before_shutdown=lambda node: node.close())


if __name__ == "__main__":
    main()
