# A fresh machine (issue 14): what the README's two commands need, and a
# check that `make run` keeps its promise.
#
#   make apt-deps    (a step of deps and run) the README's prerequisites are there, and the
#                    Debian packages the goal needs are installed when missing: python3-venv and
#                    binutils for run and deps, also .ci/apt-packages when the goal is test.
#                    As root or with password-less sudo; otherwise it prints the apt-get command
#                    and fails (scripts/apt-deps.sh)
#   make fresh-run   (in make test) git clone of this repository (its committed state) into a
#                    temp dir, then `make run` there with a PATH holding only Debian's essential
#                    programs and the prerequisites (no ffmpeg, qemu, mosquitto, curl ...), its
#                    own venv and models, the shared download caches; passes when the demo shows
#                    the `granted` event and facegate is quiet (scripts/fresh-run.sh).
#                    FRESH_KEEP=1 keeps the clone; FRESH_DEMO_SECONDS (default 20) bounds the demo.

TEST_TARGETS += fresh-run

.PHONY: apt-deps fresh-run

apt-deps:
	@bash scripts/apt-deps.sh $(if $(filter test,$(MAKECMDGOALS)),test,run)

fresh-run:
	bash scripts/fresh-run.sh
