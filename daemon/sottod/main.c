/* SPDX-License-Identifier: MIT */
/* sottod: the sotto monitor.  Owns org.sotto.Sotto1, checks and queues the
 * callers' requests, and hands the work to a sandboxed sotto-worker. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/common/privs.h"
#include "daemon/sottod/bus-errors.h"
#include "daemon/sottod/config.h"
#include "daemon/sottod/dictation.h"
#include "daemon/sottod/log.h"
#include "daemon/sottod/manager.h"
#include "daemon/sottod/quota-manager.h"

#ifndef LIBEXECDIR
#define LIBEXECDIR "/usr/libexec/sotto"
#endif

static void help(void) {
        printf("Usage: sottod [OPTIONS]\n\n"
               "Serve a language model to desktop programs over D-Bus (org.sotto.Sotto1).\n\n"
               "  --system            use the system bus (default when started as root)\n"
               "  --session           use the session bus (default otherwise)\n"
               "  --address ADDR      use the bus at ADDR\n"
               "  --model PATH        the GGUF model file to serve\n"
               "  --mmproj PATH       its vision projector (mmproj GGUF): answer about images\n"
               "  --config FILE       read settings from FILE and FILE.d/*.conf (sotto.conf(5))\n"
               "  --config-dir DIR    read the drop-ins from DIR instead of FILE.d\n"
               "  --state-dir DIR     keep usage accounting in DIR (default /var/lib/sotto on the\n"
               "                      system bus, $STATE_DIRECTORY under systemd, else nowhere)\n"
               "  --whisper-model PATH  a whisper.cpp ggml-*.bin model for dictation and transcription\n"
               "  --context N         context size per request, in tokens (0: the model's, at most 4096)\n"
               "  --threads N         threads of the worker (0: all CPUs)\n"
               "  --max-active N      requests generated at once (default 8)\n"
               "  --user NAME         user to switch to when started as root (default sotto)\n"
               "  --worker PATH       the sotto-worker program\n"
               "  --polkit[=yes|no|auto]  ask polkit before serving a caller (auto: on the system\n"
               "                      bus; a session bus or an --address bus has no polkit boundary)\n"
               "  --debug             log more\n"
               "  -h, --help          show this help\n");
}


static int connect_bus(Manager *m, const char *address, bool system_bus) {
        int r;
        if (address) {
                r = sd_bus_new(&m->bus);
                if (r >= 0)
                        r = sd_bus_set_address(m->bus, address);
                if (r >= 0)
                        r = sd_bus_set_bus_client(m->bus, true);
                if (r >= 0)
                        r = sd_bus_negotiate_fds(m->bus, true);
                if (r >= 0)
                        r = sd_bus_start(m->bus);
        } else
                r = system_bus ? sd_bus_open_system(&m->bus) : sd_bus_open_user(&m->bus);
        if (r < 0)
                return log_error_errno(r, "cannot connect to the %s bus: %m",
                                       address ? address : system_bus ? "system" : "session");
        r = sd_bus_attach_event(m->bus, m->event, 0);
        if (r < 0)
                return r;
        /* Our own bus going away ends the daemon. */
        (void)sd_bus_set_exit_on_disconnect(m->bus, true);
        r = manager_register_objects(m);
        if (r < 0)
                return log_error_errno(r, "cannot register the objects: %m");
        r = sd_bus_request_name(m->bus, SOTTO_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "cannot own the name %s (is another sottod running, or does the bus "
                                          "policy not allow this user?): %m", SOTTO_BUS_NAME);
        return 0;
}

/* The state directory must be the service user's: started as root, make
 * it before switching user, as StateDirectory=
 * would. */
static int prepare_state_dir(const char *dir, const char *user) {
        struct stat st;
        bool made = false;
        if (mkdir(dir, 0755) == 0)
                made = true;
        else if (errno != EEXIST)
                return log_error_errno(-errno, "cannot create the state directory %s: %m", dir);
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                return log_error_errno(-ENOTDIR, "the state directory %s is not a directory", dir);
        if (geteuid() == 0 && user) {
                struct passwd *pw = getpwnam(user);
                if (pw && made && chown(dir, pw->pw_uid, pw->pw_gid) < 0)
                        return log_error_errno(-errno, "cannot give %s to user %s: %m", dir, user);
        }
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        if (si->ssi_signo == SIGHUP)
                (void)manager_reload(m);
        else {
                log_info("received %s, stopping", strsignal((int)si->ssi_signo));
                manager_stop(m);
        }
        return 0;
}

static int find_worker(ManagerConfig *c, const char *argv0) {
        const char *env = getenv("SOTTO_WORKER");
        char self[PATH_MAX], path[PATH_MAX + 32];
        if (c->worker_path)
                return 0;
        if (env && *env)
                return (c->worker_path = strdup(env)) ? 0 : -ENOMEM;
        /* Next to sottod (build tree, or libexec when installed there). */
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0) {
                self[n] = 0;
                char *slash = strrchr(self, '/');
                if (slash) {
                        *slash = 0;
                        snprintf(path, sizeof path, "%s/sotto-worker", self);
                        if (access(path, X_OK) == 0)
                                return (c->worker_path = strdup(path)) ? 0 : -ENOMEM;
                }
        }
        return (c->worker_path = strdup(LIBEXECDIR "/sotto-worker")) ? 0 : -ENOMEM;
}

/* The first GGUF (by name) in the model directory of this kind of bus. */
static int find_default_model(ManagerConfig *c, bool system_bus) {
        _cleanup_free_ char *dir = NULL;
        const char *home = getenv("HOME");
        if (system_bus)
                dir = strdup("/var/lib/sotto/models");
        else if (home && asprintf(&dir, "%s/.local/share/sotto/models", home) < 0)
                dir = NULL;
        if (!dir)
                return -ENOENT;
        struct dirent **list = NULL;
        int n = scandir(dir, &list, NULL, alphasort), r = -ENOENT;
        for (int i = 0; i < n; i++) {
                size_t len = strlen(list[i]->d_name);
                if (r < 0 && len > 5 && STREQ(list[i]->d_name + len - 5, ".gguf") &&
                    asprintf(&c->model_path, "%s/%s", dir, list[i]->d_name) >= 0)
                        r = 0;
                free(list[i]);
        }
        free(list);
        return r;
}

static int run(int argc, char **argv) {
        ManagerConfig cfg = {
                .max_active = 8,
                .max_per_caller = 16,
                .max_queued = 256,
                .max_chats_per_caller = 8,
                .max_chats = 64,
                .max_prompt_bytes = 1u << 20,
                .drain_usec = 5 * 1000000ull,
                .max_image_bytes = 32u << 20,
                .image_timeout_usec = 10 * 1000000ull,
        };
        const char *address = NULL, *config_file = NULL, *model = NULL, *state_dir = NULL, *mmproj = NULL;
        const char *whisper_model = NULL;
        QuotaConfig quota_cfg;
        int system_bus = -1, polkit = -1;
        static const struct option opts[] = {
                { "system", no_argument, NULL, 'S' },          { "session", no_argument, NULL, 'U' },
                { "address", required_argument, NULL, 'A' },   { "model", required_argument, NULL, 'm' },
                { "config", required_argument, NULL, 'c' },    { "context", required_argument, NULL, 'C' },
                { "threads", required_argument, NULL, 't' },   { "max-active", required_argument, NULL, 'a' },
                { "user", required_argument, NULL, 'u' },      { "worker", required_argument, NULL, 'w' },
                { "debug", no_argument, NULL, 'd' },           { "help", no_argument, NULL, 'h' },
                { "polkit", optional_argument, NULL, 'P' },
                { "config-dir", required_argument, NULL, 'D' }, { "state-dir", required_argument, NULL, 's' },
                { "mmproj", required_argument, NULL, 'V' },
                { "whisper-model", required_argument, NULL, 'W' },
                {},
        };
        char err[512];
        int c, r;

        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                r = 0;
                switch (c) {
                case 'S': system_bus = 1; break;
                case 'U': system_bus = 0; break;
                case 'A': address = optarg; break;
                case 'm': model = optarg; break;
                case 'V': mmproj = optarg; break;
                case 'W': whisper_model = optarg; break;
                case 'c': config_file = optarg; break;
                case 'D': cfg.config_dir = strdup(optarg); break;
                case 's': state_dir = optarg; break;
                case 'C': r = parse_u32(optarg, 1u << 20, &cfg.n_ctx); break;
                case 't': r = parse_u32(optarg, 1024, &cfg.n_threads); break;
                case 'a': r = parse_u32(optarg, 256, &cfg.max_active); break;
                case 'u': cfg.user = strdup(optarg); break;
                case 'w': cfg.worker_path = strdup(optarg); break;
                case 'd': log_set_max_level(LOG_DEBUG); break;
                case 'P':
                        if (!optarg || STREQ(optarg, "yes"))
                                polkit = 1;
                        else if (STREQ(optarg, "no"))
                                polkit = 0;
                        else if (STREQ(optarg, "auto"))
                                polkit = -1;
                        else
                                r = -EINVAL;
                        break;
                case 'h': help(); return 0;
                default: return -EINVAL;
                }
                if (r < 0)
                        return log_error_errno(r, "bad value '%s' for option %s", optarg, argv[optind - 1]);
        }
        if (optind < argc)
                return log_error_errno(-EINVAL, "unexpected argument '%s' (see --help)", argv[optind]);
        quota_config_init(&quota_cfg);
        if (config_file) {
                r = config_load_all(config_file, cfg.config_dir, &cfg, &quota_cfg, err, sizeof err);
                if (r < 0) {
                        quota_config_done(&quota_cfg);
                        return log_error_errno(r, "%s", err);
                }
                cfg.config_path = strdup(config_file);
        }
        if (model) {
                free(cfg.model_path);
                cfg.model_path = strdup(model);
                cfg.model_from_cli = true;
        }
        if (mmproj) {
                free(cfg.mmproj_path);
                cfg.mmproj_path = *mmproj ? strdup(mmproj) : NULL;
                cfg.mmproj_from_cli = true;
        }
        if (!cfg.model_path && find_default_model(&cfg, system_bus == 1 || (system_bus < 0 && geteuid() == 0)) < 0)
                return log_error_errno(-ENOENT, "no model given and none found: use --model PATH, Model= in the "
                                                "configuration, or put a GGUF file into %s",
                                       system_bus == 1 || (system_bus < 0 && geteuid() == 0)
                                               ? "/var/lib/sotto/models/"
                                               : "~/.local/share/sotto/models/");
        if (whisper_model) {
                free(cfg.whisper_model_path);
                cfg.whisper_model_path = *whisper_model ? strdup(whisper_model) : NULL;
        }
        if (!cfg.user)
                cfg.user = strdup("sotto");
        if (cfg.max_active < 1)
                cfg.max_active = 1;
        /* Activated by a bus: serve on that bus. */
        if (system_bus < 0 && !address && getenv("DBUS_STARTER_ADDRESS"))
                address = getenv("DBUS_STARTER_ADDRESS");
        /* polkit guards the system bus, where callers are other users.  On
         * a session bus every caller is the daemon's own user; a bus given
         * by --address (or activation) is private unless --system says it
         * is the system bus, or --polkit asks anyway. */
        if (polkit < 0)
                polkit = system_bus == 1 || (system_bus < 0 && !address && geteuid() == 0);
        cfg.polkit = polkit;
        if (system_bus < 0)
                system_bus = geteuid() == 0;
        r = find_worker(&cfg, argv[0]);
        if (r < 0)
                return r;
        if (!state_dir && getenv("STATE_DIRECTORY") && *getenv("STATE_DIRECTORY"))
                state_dir = getenv("STATE_DIRECTORY"); /* StateDirectory= of the unit */
        if (!state_dir && system_bus && !address)
                state_dir = "/var/lib/sotto";
        if (state_dir) {
                r = prepare_state_dir(state_dir, cfg.user);
                if (r < 0)
                        return r;
        }

        /* Signals are events; a closed output pipe is an error, not a death. */
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGCHLD);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        signal(SIGPIPE, SIG_IGN);

        /* Many callers, each with an fd: use the hard limit. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &rl);
        }

        _cleanup_(manager_freep) Manager *m = NULL;
        r = manager_new(&cfg, &m);
        if (r < 0)
                return log_error_errno(r, "cannot set up: %m");
        quotas_set_config(m, &quota_cfg);
        /* The model is opened before dropping privileges: its path comes from
         * the administrator, and the worker only ever gets the fd. */
        r = manager_open_model(m);
        if (r >= 0)
                r = manager_open_mmproj(m);
        if (r < 0)
                return r;
        r = dictation_open_model(m);
        if (r < 0)
                return r;
        r = privs_drop(cfg.user, err, sizeof err);
        if (r < 0)
                return log_error_errno(r, "%s", err);
        if (r > 0)
                log_info("running as user %s", cfg.user);
        else
                log_info("not started as root: running as uid %d, skipped switching user (no_new_privs set)",
                         (int)getuid());

        if (state_dir) {
                r = quotas_open_state(m, state_dir);
                if (r < 0)
                        return r;
        } else
                log_info("no state directory: usage is counted in memory only (see --state-dir)");

        r = connect_bus(m, address, system_bus);
        if (r < 0)
                return r;
        (void)sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
        (void)sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);
        (void)sd_event_add_signal(m->event, NULL, SIGHUP, on_signal, m);
        log_info("owning %s on the %s bus; loading %s", SOTTO_BUS_NAME,
                 address ? address : system_bus ? "system" : "session", m->model_file);
        log_info(cfg.polkit ? "authorization: asking polkit (actions org.sotto.*)"
                            : "authorization: not asking polkit (not the system bus; --polkit to ask)");
        manager_set_state(m, "starting", "loading %s", m->model_file);
        r = manager_start(m);
        if (r < 0)
                return r;
        r = sd_event_loop(m->event);
        if (r < 0)
                return log_error_errno(r, "event loop failed: %m");
        log_info("stopped");
        return 0;
}

int main(int argc, char **argv) {
        return run(argc, argv) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
