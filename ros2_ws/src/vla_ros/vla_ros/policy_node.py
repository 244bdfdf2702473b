"""Policy node: cameras + /joint_states + instruction -> control loop -> the arm's controller topic.

Inference runs in the policy server (`vla serve`, on the GPU); this node is light: the control
loop (asynchronous refill, safety filter, watchdog) from vla.control and the ZeroMQ client.
Commands go out exactly as ros2_control expects: trajectory_msgs/JointTrajectory for a
JointTrajectoryController, or std_msgs/Float64MultiArray for a forward position controller.
With dry_run nothing is sent to the arm. vla/estop (Bool) true holds the arm at the joints measured when
it is raised, until false; it is read both latched (a transient-local e-stop sent before this node started
still holds) and from any default-QoS publisher (`ros2 topic pub --once vla/estop std_msgs/Bool "data:
false"` releases it); the ~/estop service (std_srvs/Trigger) raises it too, and both edges are logged.
Every topic is relative, so one namespace moves a whole robot.

Never far from the arm: each command is within the robot config's gap bound (max_velocity x
command_gap_s) of the joints measured at that tick. Each instruction received starts a new episode
(loop, policy and last command reset: the first tick steps from the measured joints), and a last
command far from the arm (a reset, a hand-moved arm) is dropped by the loop, which approaches the next
plan from the measured joints and says so in ~/status (`approaching`). On connecting, the node checks that
the server serves its robot (its namespace, cameras and action size) and exits naming both otherwise;
vla/policy_ready (Bool, latched) says when it is connected, for a sim that waits for its policy.

The last line of defence is here, right before publishing: every command must be finite, inside
the joint limits, within the gap bound of the joints measured now, and at most one velocity step from
the last command sent (the measured joints before the first one and when the last one is far from them).
One that is not is never published; the node holds the last command sent
(or, with none, publishes nothing), counts the refusal by kind and says why in ~/status,
/diagnostics and the log. A hold target is never taken from a measured state that is not finite
or outside the limits (or lacks a joint): with no command sent yet nothing is published then.

Time: with use_sim_time the control timer, the watchdog and the input ages all run on /clock, so a
simulator that runs slower than real time does not make the inputs look stale. With `lockstep`
(against the sim node's lockstep, on sim time) there is no timer: the node ticks once per
observation (joint states and every camera with one stamp), waits for the chunk it asked for,
and stamps the command with the observation it answers; each (re)published instruction starts
a new episode (loop and policy reset), as `vla eval` does per episode.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node, SetParametersResult
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from vla.control import ControlLoop, SafetyFilter, Watchdog
from vla.serving.client import PolicyClient, RemotePolicy, ServerError
from vla_ros.conversions import (
    CONTROLLER_TYPES,
    command_msg,
    command_type,
    default_command_topic,
    joint_state_to_array,
    msg_to_image,
)
from vla_ros.parameters import (
    COMMAND_TOPIC,
    INSTRUCTION_TOPIC,
    ROBOT_CONFIG,
    Spec,
    StartupError,
    declare,
    relative,
    robot_config,
)
from vla_ros.spin import spin

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
ANY_PUBLISHER = QoSProfile(depth=10)  # reliable, volatile: matches a plain `ros2 topic pub` and latched publishers

# Each parameter's default is in the vla package's configs/ros/policy_node.yaml (parameters.PARAMETER_DIR).
PARAMETERS: Spec = {
    **ROBOT_CONFIG,
    "policy_server": (str, "ZeroMQ address of the policy server (vla serve --bind); each robot needs its own "
                           "server and address", True),
    "server_key": (str, "the server's public CURVE key file (empty: no encryption, loopback only)", True),
    "controller_type": (str, f"command message type: one of {CONTROLLER_TYPES}", True),
    **COMMAND_TOPIC,
    "instruction": (str, "the task in words; the instruction topic replaces it (settable at run time)", False),
    **INSTRUCTION_TOPIC,
    "dry_run": (bool, "run everything but publish nothing to the arm (settable at run time)", False),
    "safety_mode": (str, "what the loop's safety filter does with an unsafe chunk: clamp or reject", True),
    "refill_threshold": (int, "ask for the next chunk when this many actions are left", True),
    "blend": (int, "actions cross-faded at each chunk hand-over", True),
    "observation_timeout_s": (float, "hold when a camera or the joint states are older than this, seconds", True),
    "inference_timeout_s": (float, "hold when the policy server has not answered for this long, seconds", True),
    "server_timeout_s": (float, "how long the policy server may stay silent (not even answering health) before it "
                                "counts as lost, seconds; a slow inference is waited for", True),
    "lockstep": (bool, "tick once per observation of a lockstep sim instead of on the timer, waiting for each "
                       "chunk (needs use_sim_time; for tests and evaluation, not for a robot)", True),
}


LOCKSTEP_SILENT_S = 10.0  # the sim node's default lockstep_timeout_s


class PolicyNode(Node):
    def __init__(self, **kwargs):
        super().__init__("policy", **kwargs)  # kwargs: e.g. context, parameter_overrides (tests)
        p = declare(self, PARAMETERS, "policy_node")
        reason = self._validate(self.get_parameters(list(PARAMETERS)))
        if reason:
            raise StartupError(reason)
        self.lockstep = bool(p["lockstep"])
        self.sim_time = bool(self.get_parameter("use_sim_time").value)
        if self.lockstep and not self.sim_time:
            raise StartupError("lockstep:=true needs use_sim_time:=true (a lockstep sim's time is /clock); "
                               "set both, or neither")
        self.add_on_set_parameters_callback(self._on_set)
        self.robot = robot_config(p["robot_config"])
        self.names = self.robot.joint_names
        self.period = 1.0 / self.robot.control_rate_hz
        self.controller_type = p["controller_type"]
        self.instruction = p["instruction"]
        self.images, self.stamps = {}, {}  # stamps: when each input arrived, on this node's clock
        self.headers: dict[str, tuple[int, int]] = {}  # lockstep: each input's header stamp
        self.answered: tuple[int, int] | None = None  # lockstep: the observation stamp last answered
        self.tick_time: float | None = None  # lockstep: the sim time of the observation being answered
        self.safety = SafetyFilter(self.robot, p["safety_mode"])
        # The latest /joint_states: the array (None when unusable) and, when it cannot be a hold
        # target, why; `good_state` is the array as a hold target (None when not valid).
        self.state, self.good_state, self.state_problem = None, None, "no /joint_states yet"
        self.last_sent: np.ndarray | None = None  # the last command published (would be, in a dry run)
        self.refused: Counter[str] = Counter()
        self.refusal = ""  # why the last refused command was refused
        self.reason = ""  # why this tick holds or publishes nothing
        # The instruction first: an executor takes ready messages in subscription order, so a new
        # episode's instruction is taken before its first observation (lockstep relies on it).
        self.create_subscription(String, p["instruction_topic"], self._on_instruction, LATCHED)
        for cam in self.robot.cameras:
            self.create_subscription(Image, relative(cam.topic), lambda m, c=cam.name: self._on_image(c, m),
                                     qos_profile_sensor_data)
        self.create_subscription(JointState, relative(self.robot.controller.state_topic), self._on_joints, 10)
        # Latched, so an e-stop sent before this node subscribed still holds the arm. A publisher that is
        # not transient local cannot be matched at all: say so loudly (the ~/estop service always works).
        # Twice: latched, so that an e-stop sent before this node subscribed still holds the arm, and volatile,
        # so that any publisher is heard (a latched subscription cannot match a plain `ros2 topic pub`). A
        # message both deliver is taken once (by its publisher and sequence number).
        self.estop_seen: dict[tuple, None] = {}
        # A volatile publisher cannot match the latched subscription (expected: the other one hears it); a
        # best-effort one matches neither: that is said loudly.
        self.create_subscription(Bool, "vla/estop", self._on_estop, LATCHED,
                                 event_callbacks=SubscriptionEventCallbacks(incompatible_qos=lambda info: None))
        self.create_subscription(Bool, "vla/estop", self._on_estop, ANY_PUBLISHER,
                                 event_callbacks=SubscriptionEventCallbacks(incompatible_qos=self._on_estop_qos))
        self.create_service(Trigger, "~/estop", self._on_estop_service)
        self.ready_pub = self.create_publisher(Bool, "vla/policy_ready", LATCHED)
        self.ready_pub.publish(Bool(data=False))
        self.max_gap = 0.0  # the largest gap between a published command and the measured joints, rad
        topic = p["command_topic"] or relative(default_command_topic(self.controller_type,
                                                                     self.robot.controller.command_topic))
        self.command_pub = self.create_publisher(command_type(self.controller_type), topic, 10)
        self.status_pub = self.create_publisher(String, "~/status", 10)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "diagnostics", 10)
        self.holding, self.publishing, self.refused_reported = False, False, 0
        self.create_timer(1.0, self._diagnostics)
        # Lockstep: sim time stands still while the node waits, so only a server silent (not even
        # answering health) for LOCKSTEP_SILENT_S of wall clock counts as lost; a busy machine's
        # half-second stalls must not turn into holds that the sim would execute as ticks.
        silent_s = max(p["server_timeout_s"], LOCKSTEP_SILENT_S) if self.lockstep else p["server_timeout_s"]
        self.client = PolicyClient(p["policy_server"], timeout_s=silent_s, retries=0,
                                   server_key=p["server_key"] or None)
        self.watchdog = Watchdog(p["observation_timeout_s"], p["inference_timeout_s"], clock=self._now)
        self.loop = None
        self.policy_reset = False  # a new episode began: reset the policy before its next inference
        self.p = p
        self.ticks = {"sent": 0, "held": 0, "silent": 0}  # moved / held / published nothing
        if not self.lockstep:
            self.create_timer(self.period, self._tick)  # on the node's clock: /clock with use_sim_time
        self.get_logger().info(f"policy node: robot {self.robot.source}, server {p['policy_server']}, "
                               f"commands on {self.command_pub.topic_name}"
                               f"{' (dry run: nothing is sent)' if p['dry_run'] else ''}"
                               f"{' (lockstep with the sim, on /clock)' if self.lockstep else ''}")

    def _now(self) -> float:
        """Seconds on this node's clock: /clock with use_sim_time, else monotonic (immune to clock steps).
        In lockstep, the time of the observation being answered: the watchdog's ages (inputs, time since
        the last chunk) are then exact multiples of the sim's period, whenever /clock arrives. On /clock
        they were not: a /clock that came after a tick's inputs made the chunk's arrival look one tick
        older, and the last action of a 10-action chunk at 10 Hz then failed the 1 s inference timeout,
        a hold the sim executed as an extra tick (the end-to-end test's 62 steps instead of 60)."""
        if self.lockstep and self.tick_time is not None:
            return self.tick_time
        return self.get_clock().now().nanoseconds * 1e-9 if self.sim_time else time.monotonic()

    def _arrival(self, msg) -> float:
        """When an input counts as taken, for the watchdog's staleness check. In lockstep, its header
        stamp: the sim time it belongs to, so it is never stale at its own tick, whichever of it and
        /clock arrives first (on a busy machine /clock can come late, and an input stamped on
        arrival with the old clock looked stale: a hold the sim executed as an extra tick)."""
        if self.lockstep:
            return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        return self._now()

    # --- parameters ------------------------------------------------------------------------------
    def _validate(self, params) -> str:
        for param in params:
            if param.name == "controller_type" and param.value not in CONTROLLER_TYPES:
                return f"controller_type must be one of {CONTROLLER_TYPES}, got {param.value!r}"
            if param.name == "safety_mode" and param.value not in ("clamp", "reject"):
                return f"safety_mode must be clamp or reject, got {param.value!r}"
            if param.name.endswith("_s") and not float(param.value) > 0:
                return f"{param.name} must be positive, got {param.value}"
        return ""

    def _on_set(self, params) -> SetParametersResult:
        reason = self._validate(params)
        if not reason:
            for param in params:
                if param.name == "instruction":
                    self.instruction = param.value
                elif param.name != "dry_run":
                    reason = f"{param.name} is fixed at start-up; restart the node to change it"
                elif param.value != self.p["dry_run"]:
                    self.p["dry_run"] = param.value
                    # What the arm last got is not what this node last checked: the step check starts
                    # again from the measured state.
                    self.last_sent = None
                    if self.loop is not None:
                        self.loop.resync(None)
        return SetParametersResult(successful=not reason, reason=reason)

    # --- inputs ----------------------------------------------------------------------------------
    def _on_image(self, camera: str, msg: Image) -> None:
        try:
            self.images[camera] = msg_to_image(msg)
            self.stamps[f"image {camera}"] = self._arrival(msg)
        except ValueError as exc:
            self.get_logger().warning(f"camera {camera}: {exc}", throttle_duration_sec=5.0)
            return
        self._lockstep_input(f"image {camera}", msg)

    def _on_joints(self, msg: JointState) -> None:
        """Every message replaces the state: one that is unusable makes the state invalid, at once."""
        self.stamps["joint_states"] = self._arrival(msg)
        try:
            self.state = joint_state_to_array(msg, self.names)
        except ValueError as exc:
            self.state, self.good_state, self.state_problem = None, None, str(exc)
        else:
            self.good_state, self.state_problem = self.safety.hold_state(self.state)
        if self.state_problem:
            self.get_logger().warning(f"joint states unusable: {self.state_problem}", throttle_duration_sec=5.0)
        self._lockstep_input("joint_states", msg)

    def _lockstep_input(self, key: str, msg) -> None:
        """Lockstep: tick once all inputs carry the same stamp, a stamp not answered yet."""
        if not self.lockstep:
            return
        self.headers[key] = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        stamps = {self.headers.get(f"image {c.name}") for c in self.robot.cameras} | {self.headers.get("joint_states")}
        if len(stamps) == 1 and None not in stamps and self.headers[key] != self.answered:
            self.tick_time = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            self._tick(stamp=msg.header.stamp)

    def _on_instruction(self, msg: String) -> None:
        """Each (re)published instruction is a new episode, as `vla eval` runs one: the loop, the policy and
        the last command are reset, so the first tick steps from the measured joints (a sim resets the arm
        for each seed; a real arm may have been moved between tasks). An empty one: no task, hold."""
        self.instruction, self.last_sent = msg.data, None
        if self.loop is not None:  # the policy's own reset waits for a request in flight (`_tick`): never block here
            self.loop.reset(policy=False)
            self.policy_reset = True
        self.get_logger().info(f"episode: {msg.data!r}" if msg.data else "no instruction: holding")

    def _on_estop(self, msg: Bool, info) -> None:
        key = _message_key(info)
        if key is not None:  # the same message through both subscriptions is one
            if key in self.estop_seen:
                return
            self.estop_seen[key] = None
            while len(self.estop_seen) > 64:
                self.estop_seen.pop(next(iter(self.estop_seen)))
        if msg.data and not self.watchdog.estopped:
            self.watchdog.estop()
            self.get_logger().error("e-stop raised on vla/estop: holding the measured joints, refusing new chunks "
                                    "until vla/estop false")
        elif not msg.data and self.watchdog.estopped:
            self.watchdog.reset_estop()
            self.get_logger().warning("e-stop cleared on vla/estop: resuming from the measured joints")

    def _on_estop_service(self, request, response):
        self.watchdog.estop()
        self.get_logger().error("e-stop raised by ~/estop: holding the measured joints, refusing new chunks until "
                                "vla/estop false")
        response.success, response.message = True, "e-stop raised; publish false on vla/estop to clear it"
        return response

    def _on_estop_qos(self, info) -> None:
        kind = getattr(info.last_policy_kind, "name", info.last_policy_kind)
        self.get_logger().error(
            f"a vla/estop publisher offers incompatible QoS ({kind}): its e-stops are NOT "
            "received; publish with --qos-reliability reliable, or call ~/estop")

    # --- loop ------------------------------------------------------------------------------------
    def _connect(self) -> bool:
        """Start the control loop on the remote policy, once the server answers its metadata.

        One request at a time (issue 19): the loop's executor asks for the next chunk in a thread and
        asks again only after an answer, and the client waits for a slow inference as long as the server
        (asked with `health`, answered at once) still holds the request; `server_timeout_s` is how long
        the server may stay silent before it counts as lost. A chunk that comes late starts at the action
        for the current tick (the executor counts the ticks since the request). Each observation carries
        a deadline of `observation_timeout_s`: a server busy for longer answers "expired" instead of
        computing a chunk from an observation this node would call stale, and the loop asks afresh."""
        try:
            # Lockstep: no deadline: the sim waits, so an observation does not age while the server works.
            policy = RemotePolicy(self.client, deadline_s=None if self.lockstep else self.p["observation_timeout_s"])
        except (TimeoutError, RuntimeError) as exc:
            self.get_logger().warning(f"policy server not ready: {exc}", throttle_duration_sec=5.0)
            return False
        problem = self._serves_another_robot(policy.metadata)
        if problem:
            raise StartupError(problem)
        self.loop = ControlLoop(policy, self.safety, refill_threshold=self.p["refill_threshold"], blend=self.p["blend"],
                                asynchronous=not self.lockstep, watchdog=self.watchdog)
        self.watchdog.inference_ok()
        self.get_logger().info(f"connected to policy {policy.metadata.get('name')!r}")
        self.ready_pub.publish(Bool(data=True))
        return True

    def _serves_another_robot(self, metadata: dict) -> str:
        """Why the server at policy_server is not this robot's ("" when it is): another namespace (two robots
        on one address), other cameras or another action size."""
        problems = []
        serves, ours = metadata.get("serves"), self.get_namespace()
        if serves is not None and serves.rstrip("/") != ours.rstrip("/"):
            problems.append(f"it serves the robot in namespace {serves!r}, this node is in {ours!r}")
        cameras = metadata.get("cameras")
        if cameras is not None and sorted(cameras) != sorted(self.robot.camera_names):
            problems.append(f"its policy reads cameras {sorted(cameras)}, robot {self.robot.name!r} has "
                            f"{sorted(self.robot.camera_names)}")
        if metadata.get("action_dim") is not None and int(metadata["action_dim"]) != self.robot.action_dim:
            problems.append(f"its policy returns {metadata['action_dim']} action values, robot {self.robot.name!r} "
                            f"takes {self.robot.action_dim}")
        if not problems:
            return ""
        return (f"policy server {self.p['policy_server']} is another robot's: " + "; ".join(problems)
                + ". Give each robot its own server address (server:=tcp://127.0.0.1:PORT)")

    def _not_ready(self) -> str:
        """Why the loop cannot run this tick ("" when it can)."""
        if self.state is None:
            return self.state_problem
        missing = [c.name for c in self.robot.cameras if c.name not in self.images]
        if missing:
            return f"no image yet from cameras {missing}"
        if not self.instruction:
            return "no instruction yet"
        if self.loop is None and not self._connect():
            return "policy server not ready"
        if self.policy_reset:  # a new episode: the policy is reset once its request in flight is answered
            if self.loop.executor.busy:
                return "new episode: waiting for the policy's request in flight"
            try:
                self.loop.policy.reset()
            except (TimeoutError, ServerError) as exc:  # a server gone or busy: hold, and try again next tick
                return f"new episode: the policy server did not take the reset: {exc}"
            self.policy_reset = False
        return ""

    def _tick(self, stamp=None) -> None:
        """One control tick; `stamp` (lockstep): the observation it answers, put on the command."""
        reason = self._not_ready()
        if reason:
            status = None
            self._publish(None, reason, stamp=stamp)
        else:
            obs = {f"observation.images.{c}": img for c, img in self.images.items()}
            obs["observation.state"], obs["task"] = self.state, self.instruction
            status = self.loop.step(obs, dict(self.stamps))
            if status.approaching:
                self.get_logger().warning(status.approaching, throttle_duration_sec=2.0)
            self._publish(status.action, status.reason if status.holding else "", status, stamp)
        if stamp is not None and self.publishing and not self.p["dry_run"]:
            self.answered = (stamp.sec, stamp.nanosec)

    def _guard(self, action: np.ndarray, reason: str) -> tuple[np.ndarray | None, str]:
        """(action, reason) if `action` may be published; else (None, why), counted and logged."""
        reference = self.last_sent if self.last_sent is not None else self.good_state
        report = self.safety.check_command(action, reference, measured=self.good_state)
        if report.accepted:
            return action, reason
        self.refused.update(report.interventions)
        self.refusal = report.reason
        self.get_logger().error(f"command refused, not published: {report.reason}", throttle_duration_sec=2.0)
        if self.loop is not None:
            self.loop.resync(self.last_sent)  # the loop goes on from what the arm last got
        return None, f"command refused: {report.reason}"

    def _publish(self, action: np.ndarray | None, reason: str, status=None, stamp=None) -> None:
        """The last line before the arm: send `action` if it passes the check, else hold the last command
        sent, else nothing; then report. `reason`: why this tick holds ("" when moving)."""
        if action is not None:
            action, reason = self._guard(action, reason)
        if action is None and self.last_sent is not None:  # hold: the last command, or the arm if it is far
            hold = self.safety.hold_action(self.good_state, self.last_sent)
            action, reason = self._guard(hold, reason or "holding")
        if action is not None:
            if not self.p["dry_run"]:
                # Free-running, each command carries the time it was made: a sim that reset the arm after it
                # was made ignores it (a real controller starts it now).
                made = stamp if stamp is not None else self.get_clock().now().to_msg()
                self.command_pub.publish(command_msg(self.controller_type, self.names, action, self.period, made))
            self.last_sent = np.asarray(action, dtype=np.float64)
            if self.good_state is not None:
                gap = self.safety.gap(action, self.good_state)[self.safety.positions]
                self.max_gap = max(self.max_gap, float(np.max(gap, initial=0.0)))
        self.holding, self.publishing, self.reason = bool(reason), action is not None, reason
        self.ticks["silent" if action is None else "held" if reason else "sent"] += 1
        summary = {"holding": self.holding, "publishing": self.publishing, "reason": reason,
                   "state_problem": self.state_problem, "refused": dict(self.refused), "refusal": self.refusal,
                   "ticks": self.ticks, "safety": self.safety.summary(), "max_command_gap": self.max_gap,
                   "command_gap_bound": float(np.max(self.safety.max_gap[self.safety.positions], initial=0.0)),
                   "command": None if action is None else [float(v) for v in action],
                   "measured": None if self.state is None else [float(v) for v in self.state]}
        if status is not None:
            summary.update(new_chunk=status.new_chunk, rejected=status.rejected, approaching=status.approaching,
                           inferences=self.loop.executor.inferences)
        self.status_pub.publish(String(data=json.dumps(summary)))
        if reason:
            self.get_logger().warning(f"{'holding' if action is not None else 'not publishing'}: {reason}",
                                      throttle_duration_sec=2.0)

    def _diagnostics(self) -> None:
        """1 Hz summary on /diagnostics for rqt_robot_monitor and the like."""
        status = DiagnosticStatus(name="vla/policy_node", hardware_id=self.robot.name)
        refused = sum(self.refused.values())
        if refused > self.refused_reported:
            status.level = DiagnosticStatus.ERROR
            status.message = f"refused {refused - self.refused_reported} command(s): {self.refusal}"
        elif not self.publishing:
            status.level, status.message = DiagnosticStatus.WARN, f"not publishing: {self.reason}"
        elif self.holding:
            status.level, status.message = DiagnosticStatus.WARN, f"holding: {self.reason}"
        else:
            status.level, status.message = DiagnosticStatus.OK, "running"
        self.refused_reported = refused
        values = {**{f"ticks_{k}": v for k, v in self.ticks.items()}, "dry_run": self.p["dry_run"],
                  "publishing": self.publishing, "commands_refused": refused,
                  **{f"refused_{k}": v for k, v in self.refused.items()}, "last_refusal": self.refusal,
                  "state_problem": self.state_problem, "connected": self.loop is not None}
        values.update(self.safety.summary())
        if self.loop is not None:
            values["inferences"] = self.loop.executor.inferences
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(msg)


def _message_key(info) -> tuple | None:
    """(publisher, sequence number) of a received message, from rclpy's message info (None without one)."""
    if not isinstance(info, dict) or info.get("publication_sequence_number") is None:
        return None
    return repr(info.get("publisher_gid")), info["publication_sequence_number"]


def main(args=None):
    spin(PolicyNode, args)


if __name__ == "__main__":
    main()
