/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>

#include "daemon/worker/sandbox.h"
#include "macro.h"

/* Refused with EPERM: a library that probes for a file gets an error it can
 * handle instead of killing the worker. */
static const int refused[] = {
        SCMP_SYS(open),        SCMP_SYS(openat),        SCMP_SYS(openat2),      SCMP_SYS(creat),
        SCMP_SYS(open_by_handle_at), SCMP_SYS(name_to_handle_at),
        SCMP_SYS(socket),      SCMP_SYS(socketpair),    SCMP_SYS(connect),      SCMP_SYS(bind),
        SCMP_SYS(listen),      SCMP_SYS(accept),        SCMP_SYS(accept4),
        SCMP_SYS(mkdir),       SCMP_SYS(mkdirat),       SCMP_SYS(rmdir),        SCMP_SYS(unlink),
        SCMP_SYS(unlinkat),    SCMP_SYS(rename),        SCMP_SYS(renameat),     SCMP_SYS(renameat2),
        SCMP_SYS(link),        SCMP_SYS(linkat),        SCMP_SYS(symlink),      SCMP_SYS(symlinkat),
        SCMP_SYS(truncate),    SCMP_SYS(chmod),         SCMP_SYS(fchmodat),     SCMP_SYS(chown),
        SCMP_SYS(lchown),      SCMP_SYS(fchownat),      SCMP_SYS(mknod),        SCMP_SYS(mknodat),
        SCMP_SYS(chdir),       SCMP_SYS(fchdir),        SCMP_SYS(inotify_init), SCMP_SYS(inotify_init1),
        SCMP_SYS(fanotify_init), SCMP_SYS(memfd_secret),
};

/* Never legitimate in the worker: the process is killed. */
static const int killed[] = {
        SCMP_SYS(execve),      SCMP_SYS(execveat),      SCMP_SYS(ptrace),       SCMP_SYS(process_vm_readv),
        SCMP_SYS(process_vm_writev), SCMP_SYS(mount),   SCMP_SYS(umount2),      SCMP_SYS(pivot_root),
        SCMP_SYS(chroot),      SCMP_SYS(unshare),       SCMP_SYS(setns),        SCMP_SYS(bpf),
        SCMP_SYS(perf_event_open), SCMP_SYS(userfaultfd), SCMP_SYS(keyctl),     SCMP_SYS(add_key),
        SCMP_SYS(request_key), SCMP_SYS(init_module),   SCMP_SYS(finit_module), SCMP_SYS(delete_module),
        SCMP_SYS(kexec_load),  SCMP_SYS(kexec_file_load), SCMP_SYS(reboot),     SCMP_SYS(swapon),
        SCMP_SYS(swapoff),     SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter), SCMP_SYS(io_uring_register),
        SCMP_SYS(setuid),      SCMP_SYS(setgid),        SCMP_SYS(setreuid),     SCMP_SYS(setregid),
        SCMP_SYS(setresuid),   SCMP_SYS(setresgid),     SCMP_SYS(setgroups),    SCMP_SYS(pidfd_getfd),
        SCMP_SYS(kcmp),        SCMP_SYS(lookup_dcookie), SCMP_SYS(acct),        SCMP_SYS(quotactl),
        SCMP_SYS(clone3), /* cannot be filtered by flags; glibc falls back to clone */
};

static const unsigned long clone_new[] = {
        CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
};

int sandbox_apply(char *err, size_t errlen) {
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        int r;

        if (!ctx)
                return set_error(err, errlen, -ENOMEM, "cannot create the seccomp filter");
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
        if (r < 0)
                goto fail;
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
        if (r < 0)
                goto fail;
        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                if (refused[i] >= 0 && (r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), refused[i], 0)) < 0)
                        goto fail;
        for (size_t i = 0; i < ELEMENTSOF(killed); i++) {
                uint32_t action = killed[i] == SCMP_SYS(clone3) ? SCMP_ACT_ERRNO(ENOSYS) : SCMP_ACT_KILL_PROCESS;
                if (killed[i] >= 0 && (r = seccomp_rule_add(ctx, action, killed[i], 0)) < 0)
                        goto fail;
        }
        /* clone() that creates a namespace is as bad as unshare(). */
        for (size_t i = 0; i < ELEMENTSOF(clone_new); i++) {
                r = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(clone), 1,
                                     SCMP_A0(SCMP_CMP_MASKED_EQ, clone_new[i], clone_new[i]));
                if (r < 0)
                        goto fail;
        }
        r = seccomp_load(ctx);
        if (r < 0)
                goto fail;
        seccomp_release(ctx);
        return 0;
fail:
        seccomp_release(ctx);
        return set_error(err, errlen, r, "cannot install the seccomp filter: %s", strerror(-r));
}
