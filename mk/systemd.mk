# systemd unit check (issue 5): `systemd-analyze verify` on systemd/facegate.service.
TEST_TARGETS += systemd-verify
.PHONY: systemd-verify
systemd-verify: build
	bash scripts/verify-systemd.sh
