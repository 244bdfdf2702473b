"""Start the node graph that a launch file describes, read from the XML launch file itself.

The `ros2` CLI and `launch` are not installable from PyPI, so tests and benches (`vla bench ros-eval`)
cannot `ros2 launch`; this needs a source checkout (the vla_ros package beside the vla package).
This reads <arg>, <include file=...>, <group> with <push_ros_namespace>, <executable> and <node>
(with args=, <param from=...> and <param name= value=>) and the $(var ...) / $(find-pkg-share ...)
substitutions, then starts each process with the venv's interpreter, so a launch file that drifts
from the nodes fails the tests. $(find-pkg-share vla_ros) is the package's source folder: it has
the layout colcon installs (launch/, config/, package.xml; tests/ros/test_package.py checks that).
As with `ros2 launch`, arguments given to the top file reach the files it includes, and a process
marked on_exit="shutdown" ends the launch when it exits (`supervise`: SIGINT to every other process,
as `ros2 launch` shuts down).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE_SRC = REPO / "ros2_ws" / "src" / "vla_ros"


def _entry_points() -> dict[str, str]:
    """exec name -> module, from the package's setup.py console_scripts."""
    text = (PACKAGE_SRC / "setup.py").read_text()
    return {m.group(1): m.group(2) for m in re.finditer(r'"(\w+) = ([\w.]+):main"', text)}


PUSH_NAMESPACE = ("push_ros_namespace", "push-ros-namespace")


class LaunchGraph:
    def __init__(self, launch_file: Path, overrides: dict[str, str], tmp: Path, env: dict[str, str]):
        self.share = PACKAGE_SRC
        self.root = self._expand(ET.parse(launch_file).getroot())
        self.declared = {a.get("name"): a for a in self.root.iter("arg")}
        self.args = {name: a.get("default", "") for name, a in self.declared.items()}
        unknown = set(overrides) - set(self.args)
        if unknown:
            raise ValueError(f"{launch_file.name} has no argument(s) {sorted(unknown)}")
        self.args.update(overrides)
        self.env = env
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self.tmp = tmp

    def _expand(self, root: ET.Element) -> ET.Element:
        """`root` with each <include> replaced by the included file's children (its args and nodes)."""
        for parent in list(root.iter()):
            for i, child in enumerate(list(parent)):
                if child.tag == "include":
                    included = self._expand(ET.parse(self.subst(child.get("file"))).getroot())
                    parent.remove(child)
                    for j, el in enumerate(included):
                        parent.insert(i + j, el)
        return root

    def subst(self, text: str) -> str:
        text = re.sub(r"\$\(var (\w+)\)", lambda m: getattr(self, "args", {})[m.group(1)], text)
        return text.replace("$(find-pkg-share vla_ros)", str(self.share))

    def _actions(self, parent: ET.Element, namespace: str = ""):
        """(element, namespace) for each <executable> and <node>, with the namespaces groups push."""
        for el in parent:
            if el.tag in PUSH_NAMESPACE:
                namespace = "/".join(p for p in (namespace, self.subst(el.get("namespace")).strip("/")) if p)
            elif el.tag == "group":
                yield from self._actions(el, namespace)
            elif el.tag in ("executable", "node"):
                yield el, namespace

    def on_exit(self) -> dict[str, str]:
        """name -> the on_exit attribute of each process that has one."""
        return {el.get("name"): el.get("on_exit") for el, _ in self._actions(self.root) if el.get("on_exit")}

    def supervise(self) -> str | None:
        """If a process marked on_exit="shutdown" has exited, shut the others down (SIGINT); returns its name."""
        for name, action in self.on_exit().items():
            proc = self.processes.get(name)
            if action == "shutdown" and proc is not None and proc.poll() is not None:
                for other in self.processes.values():
                    if other.poll() is None:
                        other.send_signal(signal.SIGINT)
                return name
        return None

    def wait_all(self, timeout: float) -> dict[str, int | None]:
        """Each process's exit status once all have exited (None: still running after `timeout`)."""
        deadline = time.monotonic() + timeout
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        return {name: proc.poll() for name, proc in self.processes.items()}

    def namespace_of(self, name: str) -> str:
        return next("/" + ns for el, ns in self._actions(self.root) if el.get("name") == name)

    def commands(self) -> dict[str, list[str]]:
        bindir = Path(sys.executable).parent
        cmds: dict[str, list[str]] = {}
        entry = _entry_points()
        for el, namespace in self._actions(self.root):
            if el.tag == "executable":
                argv = shlex.split(self.subst(el.get("cmd")))
                if argv[0] == "vla":
                    argv[0] = str(bindir / "vla")
                cmds[el.get("name")] = argv
            elif el.tag == "node":
                name, exe = el.get("name"), el.get("exec")
                argv = [sys.executable, "-m", entry[exe], *shlex.split(self.subst(el.get("args", ""))),
                        "--ros-args", "-r", f"__node:={name}"]
                if namespace:
                    argv += ["-r", f"__ns:=/{namespace}"]
                for param in el.iter("param"):
                    if param.get("from"):
                        argv += ["--params-file", self.subst(param.get("from"))]
                    else:
                        value = self.subst(param.get("value", ""))
                        if value != "":
                            argv += ["-p", f"{param.get('name')}:={value}"]
                cmds[name] = argv
        return cmds

    def start(self, only: list[str] | None = None) -> None:
        for name, argv in self.commands().items():
            if only is None or name in only:
                self.start_one(name, argv)

    def start_one(self, name: str, argv: list[str] | None = None) -> None:
        argv = argv or self.commands()[name]
        self.logs[name] = self.tmp / f"{name}.log"
        log = self.logs[name].open("a")
        self.processes[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=REPO)

    def stop(self, name: str) -> None:
        proc = self.processes.pop(name, None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def log(self, name: str) -> str:
        return self.logs[name].read_text() if name in self.logs else ""


def ros_env(tmp: Path, domain: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_HOME=str(tmp / "ros_home"),
               RMW_IMPLEMENTATION="rmw_fastrtps_cpp", MUJOCO_GL="egl", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_SRC), str(REPO), env.get("PYTHONPATH", "")])
    return env


def free_address() -> str:
    """A loopback ZeroMQ address on a port the OS just handed out and took back: free now, for a server
    that another process binds (a fixed port collides with a parallel run or some other listener)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


def wait_for(predicate, timeout: float, poll: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return False


def call_trigger(node, service: str, timeout: float = 120.0):
    """Call a std_srvs/Trigger service from the test's node (spun elsewhere); its reply."""
    # deferred: std_srvs is the optional ros extra; tests/helpers.py imports this module without it
    from std_srvs.srv import Trigger

    client = node.create_client(Trigger, service)
    assert client.wait_for_service(timeout_sec=timeout), f"{service} never appeared"
    future = client.call_async(Trigger.Request())
    assert wait_for(future.done, timeout), f"{service} did not answer"
    return future.result()
