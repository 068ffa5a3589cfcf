# The two commands README promises, and JupyterLab on the chapters. All set themselves up on a fresh machine.
PROFILE ?= full
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MALLOC_MMAP_THRESHOLD_ := 17179869184
export MALLOC_TRIM_THRESHOLD_ := 17179869184

# JupyterLab offline: no announcements feed, no update check, no extension manager querying PyPI.
LAB_ARGS ?=
LAB_OFFLINE := --LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
	--LabApp.extension_manager=readonly
# Jupyter refuses to run as root unless told; containers and CI machines run as root.
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--ServerApp.allow_root=True)

.PHONY: setup book test lab

setup:
	bash scripts/setup.sh

book: setup
	.venv/bin/rrgkit book --profile $(PROFILE)

test: setup
	bash scripts/test.sh

lab: setup
	.venv/bin/jupyter lab --ServerApp.root_dir=notebooks --MappingKernelManager.default_kernel_name=rrgkit \
		$(LAB_OFFLINE) $(LAB_ROOT) $(LAB_ARGS)
