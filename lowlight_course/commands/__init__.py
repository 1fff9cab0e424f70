"""One module per ``lowlight-course`` command; each has ``register(subparsers, common_parent)``,
which adds its parser and sets ``func`` (args -> exit status). ``lowlight_course.cli`` lists them."""
