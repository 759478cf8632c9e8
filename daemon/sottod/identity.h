/* SPDX-License-Identifier: MIT */
/* Who is calling: an application identity built only from what the kernel
 * vouches for (the sender's uid and pid as the bus daemon saw them, then
 * the process's cgroup or executable), never from what the caller says
 * about itself (argv, comm, a desktop-id string).  The threat model is in
 * sottod(8), section IDENTITY. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum IdentityKind {
        IDENTITY_APP,        /* a systemd app scope or service: app-[<launcher>-]<AppID>-<n>.scope */
        IDENTITY_FLATPAK,    /* app-flatpak-<AppID>-<n>.scope */
        IDENTITY_SNAP,       /* snap.<name>.<app>-<uuid>.scope */
        IDENTITY_EXE,        /* unconfined: the executable's path */
        IDENTITY_UNCONFINED, /* unconfined and the executable cannot be read: known by uid only */
        _IDENTITY_KIND_MAX,
} IdentityKind;

#define IDENTITY_APP_MAX 4096

typedef struct Identity {
        uid_t uid;
        pid_t pid;
        uint64_t start_time; /* /proc/PID/stat field 22, clock ticks since boot */
        IdentityKind kind;
        char app_id[IDENTITY_APP_MAX]; /* AppID, snap.<name>.<app>, executable path, or "unconfined" */
        char launcher[64];             /* for app scopes: gnome, kde, flatpak ... ("" if none) */
} Identity;

const char *identity_kind_to_string(IdentityKind k);

/* ---- pure parsers (unit-tested) ---- */

/* The path of the process in the unified hierarchy ("0::PATH") from the text
 * of /proc/PID/cgroup, else the name=systemd v1 hierarchy's.  Copies into
 * buf; -ENOENT when neither is there, -EINVAL on a malformed line,
 * -ENAMETOOLONG. */
int cgroup_path_from_proc(const char *text, char *buf, size_t size);

/* One unit name (a cgroup path component) -> AppID.  Returns 1 and fills
 * kind/app_id/launcher for an application unit, 0 for any other name,
 * -EINVAL for an application unit whose AppID is not acceptable. */
int identity_parse_unit(const char *unit, IdentityKind *kind, char *app_id, size_t app_size, char *launcher,
                        size_t launcher_size);

/* The innermost application unit in a cgroup path: 1 found, 0 none. */
int identity_parse_cgroup(const char *path, IdentityKind *kind, char *app_id, size_t app_size, char *launcher,
                          size_t launcher_size);

/* The effective uid from the text of /proc/PID/status. */
int proc_status_euid(const char *text, uid_t *ret);

/* Field 22 of /proc/PID/stat (the comm field may hold spaces and ')'). */
int proc_stat_start_time(const char *text, uint64_t *ret);

/* ---- reading /proc ---- */

/* Reads the identity of pid (uid as given by the bus) under proc_root
 * ("/proc" except in tests).  The start time is read before and after the
 * cgroup and executable: if it changed, or the process went away, the pid
 * was reused while we looked and the call fails with -ESRCH. */
int identity_from_pid(const char *proc_root, uid_t uid, pid_t pid, Identity *ret);

/* Start time of pid now (-ESRCH when gone). */
int proc_start_time(const char *proc_root, pid_t pid, uint64_t *ret);

/* "uid 1000 app org.gnome.Foo (app scope, launcher gnome)" for logs. */
void identity_describe(const Identity *id, char *buf, size_t size);
