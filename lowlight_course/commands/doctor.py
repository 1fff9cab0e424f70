"""``lowlight-course doctor``: the environment report (Python, torch, devices, profile, images, kernel)."""
from __future__ import annotations

import os
import platform
import sys

__all__ = ["doctor", "register"]

_PACKAGES = ["torch", "numpy", "matplotlib", "ipywidgets", "jupyterlab", "tqdm", "scikit-image", "pillow",
             "papermill", "nbconvert", "nbformat", "ipykernel", "pytest", "pytest-xdist", "nbval",
             "pytorch-msssim"]


def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _device_words(device: str) -> str:
    """``"cuda"`` -> ``"cuda (NVIDIA ...)"``; ``"mps"`` -> Apple's GPU; ``"cpu"`` -> the CPU."""
    import torch

    if device == "cuda":
        return f"cuda ({torch.cuda.get_device_name(0)})"
    if device == "mps":
        return "mps (Apple's GPU; operations it lacks fall back to the CPU)"
    return f"cpu ({torch.get_num_threads()} threads)"


def doctor(echo=print) -> int:
    """Print an environment report; return 0 when the course can run, 1 otherwise."""
    problems = []
    echo(f"python        {platform.python_version()} ({sys.executable})")
    echo(f"platform      {platform.platform()}")
    echo(f"cpu cores     {os.cpu_count()}")
    try:
        import torch

        echo(f"torch         {torch.__version__}, {torch.get_num_threads()} threads")
        if torch.cuda.is_available():
            names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
            echo(f"CUDA          available: {names} (bf16: {torch.cuda.is_bf16_supported()})")
        else:
            echo("CUDA          not available")
        mps = getattr(torch.backends, "mps", None)
        echo(f"MPS           {'available' if mps is not None and mps.is_available() else 'not available'}")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"torch cannot be imported: {exc}")
        echo(f"torch         FAILED: {exc}")
    echo("packages")
    for name in _PACKAGES:
        v = _version(name)
        echo(f"  {name:<15} {v}")
    try:
        from lowlight_course.profiles import auto_choice, get_profile

        name, device, why = auto_choice()
        p = get_profile("auto")
        echo(f"training on   {_device_words(device)} (fit(device='auto'))")
        echo(f"profile auto  -> {p.name}: {why}; {p.image_size}px crops, {p.batch_size} per batch, "
             f"{p.steps} steps")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"profiles: {exc}")
        echo(f"profile       FAILED: {exc}")
    try:
        from lowlight_course.data import list_images, load_image

        names = list(list_images())
        ok = []
        for n in names:
            img = load_image(n)
            ok.append(f"{n} {tuple(img.shape)}")
        echo(f"images        {len(ok)} bundled image(s) readable" + (f": {', '.join(ok[:4])}" if ok else ""))
        if not ok:
            problems.append("no bundled images found")
    except ImportError as exc:
        echo(f"images        skipped (lowlight_course.data not importable: {exc})")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"bundled images: {exc}")
        echo(f"images        FAILED: {exc}")
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        spec = KernelSpecManager().get_kernel_spec("python3")
        argv0 = spec.argv[0]
        if argv0 in ("python", "python3"):
            argv0 = f"{argv0} (resolves to {sys.executable})"
        echo(f"kernel        python3 -> {argv0}")
    except Exception as exc:  # noqa: BLE001
        echo(f"kernel        python3 not found ({exc}); notebooks cannot run headless")
        problems.append("no python3 Jupyter kernel")
    if problems:
        echo("\nproblems:")
        for p in problems:
            echo(f"  - {p}")
        return 1
    echo("\nall good")
    return 0



def register(sub, common) -> None:
    p = sub.add_parser("doctor", help="check the environment", parents=[common])
    p.set_defaults(func=lambda args: doctor())
