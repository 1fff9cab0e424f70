"""The course on a real JupyterHub with four learners at once (issue 14, item 2). ``make hub-test``.

JupyterHub (PyPI) with configurable-http-proxy (npm, build/npm/) on 127.0.0.1, the dummy
authenticator, ``SimpleLocalProcessSpawner`` with a home per learner under a temp dir, and an admin
service token. The course is distributed the way instructors do it: an nbgitpuller 1.3 link pulling
a local ``file://`` git repository of the course (lectures and exercises) that the test makes.

Each learner, in a browser context of their own in Debian's Chromium: logs in, follows the
nbgitpuller link (their server starts, the course is cloned, chapter 00 opens), runs chapter 00
under smoke, opens exercise 01, types an answer over the stub of ``mse`` and reads the check's
verdict. A solo learner does this alone first, then the four learners at once: the two wall times
and each learner server's peak memory go to build/hub/measurements.json.

Then the instructor updates the course (a changed lecture, a new notebook, and a change to the
very cell of exercise 01 the learners edited) and each of the four pulls again: their answer is
kept, the new material arrives, chapter 00, the new notebook and the exercise open and run, and
the collision (which nbgitpuller's ``-Xours`` merge drops silently) is reported by the exercise's
setup cell with the instructor's version written beside (``lowlight_course.course_files``).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "browser"))
import _browser  # noqa: E402
import _lab  # noqa: E402

LEARNERS = ["learner1", "learner2", "learner3", "learner4"]
SOLO = "solo"
LECTURE = "00_setup_and_data"
EXERCISE = "01_mse_and_psnr"
NEW_NOTEBOOK = "90_workshop_wrap_up"  # not a course number: the instructor's own addition
TARGET = "lowlight-course"          # nbgitpuller's targetpath in each home
STUB = "def mse(pred, target):"     # the cell the learner answers
ANSWER = '''def mse(pred, target):
    """Mean squared error over all elements: (B, C, H, W), (B, C, H, W) -> scalar tensor."""
    err = pred - target  # my answer: square each error, then average
    return (err * err).mean()
'''
ANSWER_MARK = "my answer: square each error, then average"
INSTRUCTOR_HINT = "(Updated by the instructor) "
LECTURE_NOTE = "Workshop note from your instructor: the new wrap-up notebook closes the day."
CHECK_CALL = "checks.check_mse(mse)"
CHP = _browser.ROOT / "build" / "npm" / "node_modules" / ".bin" / "configurable-http-proxy"
RUN_TIMEOUT = float(os.environ.get("LOWLIGHT_HUB_RUN_TIMEOUT", "480"))
MEASUREMENTS = _browser.ROOT / "build" / "hub" / "measurements.json"


# ------------------------------------------------------------------------------------------------
# What the test needs
# ------------------------------------------------------------------------------------------------
def _requirements() -> str:
    """The configurable-http-proxy command; skips (fails under LOWLIGHT_BROWSER=1) naming what is missing."""
    _browser.chromium_path()
    for mod, pin in (("jupyterhub", "jupyterhub"), ("nbgitpuller", "nbgitpuller")):
        try:
            __import__(mod)
        except ImportError:
            _browser.unavailable(f"{pin} is not installed: .venv/bin/pip install -c constraints/tested.txt "
                                 "-e '.[hub]' (or make hub-test)")
    if shutil.which("node") is None:
        _browser.unavailable("node is not installed (configurable-http-proxy needs it): apt-get install -y nodejs npm")
    chp = os.environ.get("LOWLIGHT_CHP") or (str(CHP) if CHP.exists() else shutil.which("configurable-http-proxy"))
    if not chp:
        _browser.unavailable(f"configurable-http-proxy is not installed at {CHP}: "
                             "npm install --prefix build/npm configurable-http-proxy@5.3.0 (or make hub-test)")
    if shutil.which("git") is None:
        _browser.unavailable("git is not installed (nbgitpuller needs it): apt-get install -y git")
    return chp


def _git(repo: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="Instructor", GIT_AUTHOR_EMAIL="instructor@example.org",
               GIT_COMMITTER_NAME="Instructor", GIT_COMMITTER_EMAIL="instructor@example.org")
    r = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"git {' '.join(args)} failed in {repo}: {r.stderr}"
    return r.stdout


def make_course_repo(path: Path) -> Path:
    """The instructor's git repository of the course: lectures (notebooks/) and exercises/."""
    path.mkdir(parents=True)
    for folder, pattern in (("notebooks", "*.ipynb"), ("notebooks", "*.md"), ("exercises", "*.ipynb")):
        (path / folder).mkdir(exist_ok=True)
        for f in sorted((_browser.ROOT / folder).glob(pattern)):
            shutil.copy2(f, path / folder / f.name)
    _git(path, "init", "-q", "-b", "main")
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "course as released")
    return path


def _cells_where(nb: dict, text: str) -> list[dict]:
    return [c for c in nb["cells"] if text in "".join(c["source"])]


def instructor_update(repo: Path) -> dict:
    """A changed lecture, a new notebook, and a change to the exercise cell the learners answer."""
    lec = repo / "notebooks" / f"{LECTURE}.ipynb"
    nb = json.loads(lec.read_text())
    first_md = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    first_md["source"] = "".join(first_md["source"]) + f"\n\n*{LECTURE_NOTE}*"
    lec.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")

    ex = repo / "exercises" / f"{EXERCISE}.ipynb"
    nb = json.loads(ex.read_text())
    (cell,) = _cells_where(nb, STUB)
    src = "".join(cell["source"])
    assert 'raise NotImplementedError("' in src, f"exercise {EXERCISE}'s stub changed shape: {src!r}"
    cell["source"] = src.replace('raise NotImplementedError("', f'raise NotImplementedError("{INSTRUCTOR_HINT}', 1)
    ex.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")

    # the new notebook: the lecture's parameters and setup cells, then one cell of its own
    src_nb = json.loads((repo / "notebooks" / f"{LECTURE}.ipynb").read_text())
    params = next(c for c in src_nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    setup = [c for c in src_nb["cells"] if "setup" in c.get("metadata", {}).get("tags", [])]
    new = {"cells": [{"cell_type": "markdown", "id": "wrap-title", "metadata": {},
                      "source": "# Workshop wrap-up\n\nWhat we measured today."},
                     dict(params, id="wrap-params", outputs=[], execution_count=None),
                     *[dict(c, id="wrap-setup", outputs=[], execution_count=None) for c in setup],
                     {"cell_type": "code", "id": "wrap-code", "metadata": {}, "outputs": [], "execution_count": None,
                      "source": "from lowlight_course.profiles import get_profile\nP = get_profile(profile)\n"
                                "print('wrap-up under profile', P.name)"}],
           "metadata": src_nb["metadata"], "nbformat": 4, "nbformat_minor": src_nb.get("nbformat_minor", 5)}
    (repo / "notebooks" / f"{NEW_NOTEBOOK}.ipynb").write_text(json.dumps(new, indent=1) + "\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "course update: lecture 00 note, wrap-up notebook, exercise 01 hint")
    return {"lecture": f"notebooks/{LECTURE}.ipynb", "new": f"notebooks/{NEW_NOTEBOOK}.ipynb",
            "exercise": f"exercises/{EXERCISE}.ipynb"}


# ------------------------------------------------------------------------------------------------
# The hub
# ------------------------------------------------------------------------------------------------
class Hub:
    def __init__(self, request, tmp: Path, chp: str, users: list[str]):
        self.tmp, self.users = tmp, users
        self.port, self.hub_port, self.api_port = (_browser.free_port() for _ in range(3))
        self.base = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(24)
        self.password = secrets.token_hex(8)
        self.homes = tmp / "homes"
        bindir = Path(sys.executable).parent
        for u in users:  # JupyterLab user settings of each learner: no news fetch, every cell in the DOM
            _browser.write_lab_settings(self.homes / u / ".jupyter")
        args = ["--allow-root"] if os.geteuid() == 0 else []
        singleuser = shutil.which("jupyterhub-singleuser", path=str(bindir)) or "jupyterhub-singleuser"
        env_for_kernels = {"LOWLIGHT_PROFILE": "smoke", "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
                           "PYTHONUNBUFFERED": "1"}
        config = f"""
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:{self.port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{self.hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{self.api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.ConfigurableHTTPProxy.pid_file = {str(tmp / 'proxy.pid')!r}
c.JupyterHub.db_url = "sqlite:///{tmp / 'hub.sqlite'}"
c.JupyterHub.cookie_secret_file = {str(tmp / 'cookie_secret')!r}
c.JupyterHub.pid_file = {str(tmp / 'hub.pid')!r}
c.JupyterHub.cleanup_servers = True
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {self.password!r}
c.Authenticator.allowed_users = {set(users)!r}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(self.homes) + '/{username}'!r}
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = {args!r}
c.Spawner.default_url = "/lab"
c.Spawner.environment = {env_for_kernels!r}
c.Spawner.start_timeout = 240
c.Spawner.http_timeout = 240
c.JupyterHub.services = [{{"name": "instructor", "api_token": {self.token!r}}}]
c.JupyterHub.load_roles = [{{"name": "instructor", "services": ["instructor"],
                             "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"]}}]
"""
        (tmp / "jupyterhub_config.py").write_text(config)
        env = _browser.isolated_env(tmp / "hubenv", **env_for_kernels)
        env["PATH"] = os.pathsep.join([str(Path(chp).parent), str(bindir), env.get("PATH", "")])
        self.server = _browser.start_server(request, [sys.executable, "-m", "jupyterhub", "-f",
                                                      tmp / "jupyterhub_config.py"],
                                            env=env, cwd=tmp, log=tmp / "hub.log", name="JupyterHub")
        request.addfinalizer(self._kill_learner_servers)
        self._seen: set = set()
        _browser.wait_http(f"{self.base}/hub/health", self.server, timeout=90)

    def api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(f"{self.base}/hub/api{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body else None

    def processes(self):
        """Every process the hub started (proxy, learner servers, kernels), remembered for cleanup."""
        import psutil

        try:
            procs = psutil.Process(self.server.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            procs = []
        self._seen.update(procs)
        return procs

    def _kill_learner_servers(self):
        """After the hub's own group is killed: anything it spawned in a session of its own."""
        import psutil

        self.processes()
        for p in list(self._seen):
            try:
                p.kill()
            except psutil.Error:
                pass


class MemoryMonitor:
    """Samples each learner's server process tree (server + kernels) RSS every 0.5 s."""

    def __init__(self, hub: Hub):
        self.hub, self.peak_tree, self.peak_server = hub, {}, {}
        self._users: dict = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _user_of(self, p):
        import psutil

        key = (p.pid, p.create_time())
        if key not in self._users:
            try:
                self._users[key] = p.environ().get("JUPYTERHUB_USER")
            except psutil.Error:
                self._users[key] = None
        return self._users[key]

    def _run(self):
        import psutil

        while not self._stop.is_set():
            tree, server = {}, {}
            for p in self.hub.processes():
                try:
                    user = self._user_of(p)
                    if not user:
                        continue
                    rss = p.memory_info().rss
                    tree[user] = tree.get(user, 0) + rss
                    if any("singleuser" in part for part in p.cmdline()[:3]):
                        server[user] = server.get(user, 0) + rss
                except psutil.Error:
                    continue
            for d, peak in ((tree, self.peak_tree), (server, self.peak_server)):
                for u, v in d.items():
                    peak[u] = max(peak.get(u, 0), v)
            self._stop.wait(0.5)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)


# ------------------------------------------------------------------------------------------------
# A learner in a browser context of their own
# ------------------------------------------------------------------------------------------------
class Learner:
    def __init__(self, name: str, hub: Hub, chromium, repo_url: str, shots: Path):
        self.name, self.hub, self.repo_url, self.shots = name, hub, repo_url, shots
        self.ctx, self.guard = chromium.context()
        self.page = self.ctx.new_page()
        self.home = hub.homes / name
        self.course = self.home / TARGET

    def shot(self, label: str):
        self.page.screenshot(path=str(self.shots / f"{self.name}_{label}.png"))

    def login(self):
        p = self.page
        p.goto(f"{self.hub.base}/hub/login")
        p.fill("input[name=username]", self.name)
        p.fill("input[name=password]", self.hub.password)
        p.click("[type=submit]")
        p.wait_for_load_state()

    def pull_link(self, open_path: str) -> str:
        """The nbgitpuller link an instructor hands out (through the hub's user-redirect)."""
        q = urlencode({"repo": self.repo_url, "branch": "main", "targetpath": TARGET,
                       "urlpath": f"lab/tree/{TARGET}/{open_path}"}, quote_via=quote)
        return f"{self.hub.base}/hub/user-redirect/git-pull?{q}"

    def follow_pull_link(self, open_path: str):
        self.page.goto(self.pull_link(open_path), timeout=120_000)

    def wait_notebook(self, open_path: str, timeout: float = 240):
        p = self.page
        try:
            # JupyterLab rewrites the URL once it has opened the file: wait for the file's tab instead
            name = open_path.rsplit("/", 1)[-1]
            p.wait_for_function("name => { const t = document.querySelector("
                                "'#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel');"
                                " return t && t.textContent.trim() === name; }", arg=name, timeout=timeout * 1000)
            p.locator(_lab.NOTEBOOK).locator(".jp-Cell").first.wait_for(timeout=timeout * 1000)
            _lab.wait_idle(p, timeout=timeout)
        except Exception as e:
            self.shot("stuck")
            pytest.fail(f"{self.name}: {open_path} did not open after the pull within {timeout:.0f} s "
                        f"(at {p.url}): {e}\nhub log:\n{self.hub.server.tail(3000)}", pytrace=False)

    def open(self, path: str):
        self.page.goto(f"{self.hub.base}/user/{self.name}/lab/tree/{TARGET}/{path}", timeout=120_000)
        self.wait_notebook(path)

    def saved(self, path: str) -> dict:
        nb = _lab.save(self.page, self.course / path, timeout=60)
        errors = _lab.error_outputs(nb)
        assert errors == [], f"{self.name}: error outputs in {path}: {errors}"
        return nb

    def close(self):
        self.ctx.close()
        self.guard.check()


def each(learners, fn):
    for lr in learners:
        fn(lr)


def first_pass(learners: list[Learner]) -> dict:
    """Log in, pull, run chapter 00, answer exercise 01 and read its verdict; all learners at once."""
    lec, ex = f"notebooks/{LECTURE}.ipynb", f"exercises/{EXERCISE}.ipynb"
    t0 = time.monotonic()
    each(learners, Learner.login)
    each(learners, lambda lr: lr.follow_pull_link(lec))
    each(learners, lambda lr: lr.wait_notebook(lec))
    t_open = time.monotonic() - t0
    each(learners, lambda lr: _lab.start_run_all(lr.page))
    each(learners, lambda lr: _lab.wait_run_all(lr.page, timeout=RUN_TIMEOUT, what=f"{lr.name}, {lec}: "))
    each(learners, lambda lr: lr.saved(lec))
    each(learners, lambda lr: lr.open(ex))
    each(learners, lambda lr: _lab.replace_cell_source(lr.page, STUB, ANSWER))
    each(learners, lambda lr: _lab.start_run_all(lr.page))
    each(learners, lambda lr: _lab.wait_run_all(lr.page, timeout=RUN_TIMEOUT, what=f"{lr.name}, {ex}: "))
    for lr in learners:
        verdict = _lab.cell_output(lr.page, CHECK_CALL)
        assert "check_mse: all" in verdict and "passed" in verdict and "[FAIL]" not in verdict, \
            f"{lr.name}: the check's verdict on a correct answer is not 'passed': {verdict!r:.500}"
        _lab._code_cell(lr.page, CHECK_CALL).scroll_into_view_if_needed()
        lr.shot("exercise_passed")
        nb = lr.saved(ex)
        (cell,) = _cells_where(nb, STUB)
        assert ANSWER_MARK in "".join(cell["source"]), f"{lr.name}: the saved exercise lacks the typed answer"
    return {"seconds": round(time.monotonic() - t0, 1), "spawn_pull_open_s": round(t_open, 1)}


# ------------------------------------------------------------------------------------------------
# The test
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def hub_setup(request, tmp_path):
    chp = _requirements()
    repo = make_course_repo(tmp_path / "instructor" / "course")
    hub = Hub(request, tmp_path / "hub", chp, [SOLO, *LEARNERS])
    return hub, repo


def test_four_learners_pull_run_answer_update(hub_setup, tmp_path_factory, request):
    hub, repo = hub_setup
    shots = _browser.screenshot_dir(request)
    t_all = time.monotonic()
    chromium = _browser.Browser(tmp_path_factory.mktemp("hub-chromium"))
    request.addfinalizer(chromium.close)
    monitor = MemoryMonitor(hub)
    request.addfinalizer(monitor.stop)
    url = repo.as_uri()
    load = {"start": os.getloadavg()}

    solo = [Learner(SOLO, hub, chromium, url, shots)]
    one = first_pass(solo)
    load["after_solo"] = os.getloadavg()
    each(solo, Learner.close)

    learners = [Learner(n, hub, chromium, url, shots) for n in LEARNERS]
    four = first_pass(learners)
    load["after_four"] = os.getloadavg()
    running = {u["name"] for u in hub.api("/users") if (u.get("servers") or {}).get("")}
    assert set(LEARNERS) <= running, f"learner servers running per the hub's API: {sorted(running)}"

    # the instructor updates the course; every learner pulls again
    changed = instructor_update(repo)
    ex, lec, new = changed["exercise"], changed["lecture"], changed["new"]
    t_update = time.monotonic()
    each(learners, lambda lr: lr.follow_pull_link(ex))
    each(learners, lambda lr: lr.wait_notebook(ex))
    kept, brought = {}, {}
    for lr in learners:
        ex_nb = json.loads((lr.course / ex).read_text())
        (cell,) = _cells_where(ex_nb, STUB)
        assert ANSWER_MARK in "".join(cell["source"]), f"{lr.name}: the pull lost the learner's answer"
        assert (lr.course / new).is_file(), f"{lr.name}: the new notebook {new} did not arrive"
        lec_text = (lr.course / lec).read_text()
        assert LECTURE_NOTE in lec_text, f"{lr.name}: the instructor's change to {lec} did not arrive"
        import nbformat

        for f in sorted(lr.course.rglob("*.ipynb")):
            if ".ipynb_checkpoints" not in f.parts:
                nbformat.validate(nbformat.read(f, as_version=4))  # every pulled notebook is a valid notebook
        kept[lr.name] = "exercise answer in " + ex
        brought[lr.name] = [new, lec + " (instructor's note)"]

    # the exercise opened after the pull: Run All; the setup cell tells of the collision
    each(learners, lambda lr: _lab.start_run_all(lr.page))
    each(learners, lambda lr: _lab.wait_run_all(lr.page, timeout=RUN_TIMEOUT, what=f"{lr.name}, {ex} after update: "))
    collision = {}
    for lr in learners:
        verdict = _lab.cell_output(lr.page, CHECK_CALL)
        assert "check_mse: all" in verdict and "[FAIL]" not in verdict, f"{lr.name}: verdict after the update: {verdict!r:.300}"
        setup_out = lr.page.locator(_lab.NOTEBOOK).locator(".jp-CodeCell").nth(1) \
            .locator(".jp-OutputArea").inner_text()
        beside = sorted(p.name for p in (lr.course / "exercises").glob(f"{EXERCISE}.course-update*.ipynb"))
        collision[lr.name] = {"told": setup_out.strip()[:400], "beside": beside}
        lr.page.locator(_lab.NOTEBOOK).locator(".jp-CodeCell").nth(1).scroll_into_view_if_needed()
        lr.shot("after_update_exercise")
        lr.saved(ex)

    # every notebook the update touched opens and runs
    for path in (lec, new):
        each(learners, lambda lr: lr.open(path))
        each(learners, lambda lr: _lab.start_run_all(lr.page))
        each(learners, lambda lr: _lab.wait_run_all(lr.page, timeout=RUN_TIMEOUT, what=f"{lr.name}, {path} after update: "))
        each(learners, lambda lr: lr.saved(path))
    update_s = time.monotonic() - t_update
    monitor.stop()
    each(learners, Learner.close)
    load["end"] = os.getloadavg()

    mib = 1024 * 1024
    result = {
        "learners": len(LEARNERS),
        "wall_s": {"one_learner": one["seconds"], "four_learners": four["seconds"],
                   "one_learner_spawn_pull_open": one["spawn_pull_open_s"],
                   "four_learners_spawn_pull_open": four["spawn_pull_open_s"],
                   "update_pull_and_rerun_four": round(update_s, 1),
                   "whole_test": round(time.monotonic() - t_all, 1)},
        "what_one_learner_ran": f"login, nbgitpuller pull, {LECTURE} Run All (smoke), {EXERCISE}: typed answer, "
                                "Run All, verdict",
        "peak_rss_mib_server_and_kernels": {u: round(v / mib, 1) for u, v in sorted(monitor.peak_tree.items())},
        "peak_rss_mib_server_only": {u: round(v / mib, 1) for u, v in sorted(monitor.peak_server.items())},
        "loadavg": load, "cpu_count": os.cpu_count(),
        "update": {"kept": kept, "brought": brought, "collision": collision},
    }
    MEASUREMENTS.parent.mkdir(parents=True, exist_ok=True)
    MEASUREMENTS.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    for u in [SOLO, *LEARNERS]:
        assert monitor.peak_tree.get(u, 0) > 50 * mib, f"no memory sample of {u}'s server: {monitor.peak_tree}"

    # where the instructor's change collided with the learner's edit: told, and given the new version beside
    missing = [m for m in ("lowlight_course/course_files.py", "lowlight_course/notebook_setup.py")
               if not (_browser.ROOT / m).is_file()]
    if missing:
        pytest.xfail(f"the collision report is not built yet: {missing} missing")
    for lr in learners:
        c = collision[lr.name]
        assert c["beside"], f"{lr.name}: no instructor version beside the edited exercise: {c}"
        assert ".course-update" in c["told"] and EXERCISE in c["told"], \
            f"{lr.name}: the exercise's setup cell did not tell the learner of the collision: {c['told']!r}"
        update = json.loads((lr.course / "exercises" / c["beside"][0]).read_text())
        (cell,) = _cells_where(update, STUB)
        assert INSTRUCTOR_HINT in "".join(cell["source"]), f"{lr.name}: the version beside is not the instructor's"
