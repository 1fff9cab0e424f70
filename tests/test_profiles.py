import pytest

from lowlight_course.profiles import ENV_VAR, PROFILES, get_profile


def test_suite_runs_under_smoke():
    assert get_profile("auto").name == "smoke"


@pytest.mark.parametrize("name", ["cpu", "gpu", "smoke", " CPU "])
def test_auto_honours_environment(monkeypatch, name):
    monkeypatch.setenv(ENV_VAR, name)
    assert get_profile("auto").name == name.strip().lower()


def test_auto_without_environment(monkeypatch):
    import torch

    monkeypatch.delenv(ENV_VAR, raising=False)
    assert get_profile().name == ("gpu" if torch.cuda.is_available() else "cpu")


def test_unknown_names(monkeypatch):
    with pytest.raises(ValueError, match="Choose one of"):
        get_profile("laptop")
    monkeypatch.setenv(ENV_VAR, "tiny")
    with pytest.raises(ValueError, match=ENV_VAR):
        get_profile("auto")
    with pytest.raises(TypeError):
        get_profile(3)


def test_profiles_grow_and_scale():
    s, c, g = PROFILES["smoke"], PROFILES["cpu"], PROFILES["gpu"]
    for field in ("image_size", "train_pairs", "steps"):
        assert getattr(s, field) <= getattr(c, field) <= getattr(g, field)
    assert s.scaled(steps=5).steps == 5 and s.steps != 5
    assert get_profile("smoke").device in ("cpu", "cuda")
