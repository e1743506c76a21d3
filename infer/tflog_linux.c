// TensorFlow's logging, made quiet before TensorFlow runs (see tflog.go).
//
// libtensorflow logs at INFO from its static initializers ("oneDNN custom
// operations are on ...") and reads TF_CPP_MIN_LOG_LEVEL only once, at its
// first message: by the time any Go code runs it is too late to set it. A
// function in the executable's .preinit_array runs before the initializers
// of every shared library, though: when TF_CPP_MIN_LOG_LEVEL is unset and
// FACEGATE_LOG_LEVEL is not debug, it executes the program again, same pid,
// arguments and environment, plus TF_CPP_MIN_LOG_LEVEL=2 (errors only).
// Nothing of the first image has run by then but the dynamic loader (about
// 0.05 s). If the exec fails (no /proc), the program goes on, chatty.

#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

// glibc calls .preinit_array functions with argc, argv and envp.
#if defined(__GLIBC__)

static const char facegate_tf_level_var[] = "TF_CPP_MIN_LOG_LEVEL=";
static char facegate_tf_quiet[] = "TF_CPP_MIN_LOG_LEVEL=2";

static void facegate_quiet_tensorflow(int argc, char **argv, char **envp) {
	(void)argc;
	if (argv == NULL || envp == NULL || getauxval(AT_SECURE)) {
		return;
	}
	size_t n = 0;
	for (char **e = envp; *e != NULL; e++, n++) {
		if (strncmp(*e, facegate_tf_level_var, sizeof facegate_tf_level_var - 1) == 0 ||
		    strcmp(*e, "FACEGATE_LOG_LEVEL=debug") == 0) {
			return;
		}
	}
	char **env = malloc((n + 2) * sizeof *env);
	if (env == NULL) {
		return;
	}
	memcpy(env, envp, n * sizeof *env);
	env[n] = facegate_tf_quiet;
	env[n + 1] = NULL;
	execve("/proc/self/exe", argv, env);
	free(env);
}

__attribute__((section(".preinit_array"), used)) static void (*facegate_preinit)(int, char **, char **) =
	facegate_quiet_tensorflow;
#endif
