# The two commands README promises. Both set themselves up on a fresh machine.
PROFILE ?= full
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MALLOC_MMAP_THRESHOLD_ := 17179869184
export MALLOC_TRIM_THRESHOLD_ := 17179869184

.PHONY: setup book test

setup:
	bash scripts/setup.sh

book: setup
	.venv/bin/rrgkit book --profile $(PROFILE)

test: setup
	bash scripts/test.sh
