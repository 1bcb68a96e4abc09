/* Unit tests for sandbox/cgroup.c: finding tined's cgroup directory from the
 * texts of /proc/self/cgroup and /proc/self/mountinfo, for cgroup v1 (a
 * hierarchy per controller, maybe mounted at a sub-root in a container),
 * cgroup v2, escaped mount points, and hierarchies that are not mounted. The
 * cgroups themselves are exercised by tests/security/test_exec_memory.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>

#include "sandbox_internal.h"

static const char hybrid_cgroup[] = "9:name=systemd:/\n"
                                    "8:pids:/\n"
                                    "4:memory:/process_api/37d6\n"
                                    "2:cpu,cpuacct:/user.slice\n"
                                    "0::/user.slice/session-1.scope\n";
static const char hybrid_mounts[] =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:5 - cgroup cgroup rw,memory\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

static void expect(const char *cg, const char *mi, const char *controller, int rc, const char *want)
{
    char out[SBX_CGROUP_PATH] = "unset";
    assert_int_equal(sbx__cgroup_locate(cg, mi, controller, out, sizeof out), rc);
    if (rc == 0)
        assert_string_equal(out, want);
}

static void test_v1_hierarchies(void **state)
{
    (void)state;
    expect(hybrid_cgroup, hybrid_mounts, "memory", 0, "/sys/fs/cgroup/memory/process_api/37d6");
    expect(hybrid_cgroup, hybrid_mounts, "pids", 0, "/sys/fs/cgroup/pids");
    expect(hybrid_cgroup, hybrid_mounts, "cpuacct", 0, "/sys/fs/cgroup/cpu,cpuacct/user.slice");
    expect(hybrid_cgroup, hybrid_mounts, NULL, 0, "/sys/fs/cgroup/unified/user.slice/session-1.scope");
    expect(hybrid_cgroup, hybrid_mounts, "blkio", -ENOENT, NULL);
    /* "mem" is not "memory": controllers are whole words. */
    expect(hybrid_cgroup, hybrid_mounts, "mem", -ENOENT, NULL);
}

static void test_v2_only(void **state)
{
    (void)state;
    static const char cg[] = "0::/system.slice/tined.service\n";
    static const char mi[] = "25 1 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
                             "rw,nsdelegate,memory_recursiveprot\n";
    expect(cg, mi, NULL, 0, "/sys/fs/cgroup/system.slice/tined.service");
    expect(cg, mi, "memory", -ENOENT, NULL); /* no v1 hierarchy */
}

/* In a container the hierarchy's root may be mounted, not its top. */
static void test_mounted_sub_root(void **state)
{
    (void)state;
    static const char cg[] = "5:memory:/docker/abc\n";
    static const char inside[] = "40 30 0:33 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n";
    expect(cg, inside, "memory", 0, "/sys/fs/cgroup/memory");
    static const char cg2[] = "5:memory:/docker/abc/sub\n";
    expect(cg2, inside, "memory", 0, "/sys/fs/cgroup/memory/sub");
    static const char elsewhere[] = "5:memory:/docker/abcdef\n";
    expect(elsewhere, inside, "memory", -ENOENT, NULL); /* a prefix that is not a parent */
    static const char v2[] = "0::/\n";
    static const char v2mi[] = "30 20 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    expect(v2, v2mi, NULL, 0, "/sys/fs/cgroup");
}

static void test_escaped_mount_point(void **state)
{
    (void)state;
    static const char cg[] = "3:memory:/a\n";
    static const char mi[] = "40 30 0:33 / /mnt/my\\040cgroups rw - cgroup cgroup rw,nosuid,memory\n";
    expect(cg, mi, "memory", 0, "/mnt/my cgroups/a");
}

static void test_bad_texts(void **state)
{
    (void)state;
    expect("", hybrid_mounts, "memory", -ENOENT, NULL);
    expect("garbage", hybrid_mounts, NULL, -ENOENT, NULL);
    expect("4:memory:relative\n", hybrid_mounts, "memory", -ENOENT, NULL);
    expect(hybrid_cgroup, "", "memory", -ENOENT, NULL);
    expect(hybrid_cgroup, "no separator here\n1 2\n", "memory", -ENOENT, NULL);
    char small[8];
    assert_int_equal(sbx__cgroup_locate(hybrid_cgroup, hybrid_mounts, "memory", small, sizeof small), -ENAMETOOLONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_hierarchies),   cmocka_unit_test(test_v2_only),
        cmocka_unit_test(test_mounted_sub_root), cmocka_unit_test(test_escaped_mount_point),
        cmocka_unit_test(test_bad_texts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
