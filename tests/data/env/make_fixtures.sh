#!/bin/bash
# Writes the fixture trees for tests/e2e/env_test.cpp (see README.md here). Overwrites them.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf quota-v2 quota-v1 no-quota bad-files

meminfo() {  # MemTotal MemAvailable SwapTotal (kB)
  cat <<MEM
MemTotal:       $1 kB
MemFree:        $2 kB
MemAvailable:   $2 kB
Buffers:           20480 kB
Cached:          1048576 kB
Shmem:            131072 kB
SwapTotal:      $3 kB
SwapFree:       $3 kB
MEM
}
vmstat() { printf 'pgmajfault 12\noom_kill 0\n'; }

# quota-v2: 16 online CPUs; cpu.max 4 CPUs on the slice, 2.5 on the job's scope (tightest);
# 64 GiB RAM, 48 GiB available; memory.max 32 GiB on the slice, which uses 20 GiB.
d=quota-v2
mkdir -p $d/proc/100 $d/sys/devices/system/cpu $d/sys/fs/cgroup/training.slice/job-7.scope
ln -s 100 $d/proc/self
echo "0::/training.slice/job-7.scope" > $d/proc/100/cgroup
meminfo 67108864 50331648 0 > $d/proc/meminfo
vmstat > $d/proc/vmstat
echo "0-15" > $d/sys/devices/system/cpu/online
echo "cpuset cpu io memory pids" > $d/sys/fs/cgroup/cgroup.controllers
echo "400000 100000" > $d/sys/fs/cgroup/training.slice/cpu.max
echo "34359738368" > $d/sys/fs/cgroup/training.slice/memory.max
echo "21474836480" > $d/sys/fs/cgroup/training.slice/memory.current
echo "250000 100000" > $d/sys/fs/cgroup/training.slice/job-7.scope/cpu.max
echo "max" > $d/sys/fs/cgroup/training.slice/job-7.scope/memory.max
echo "8589934592" > $d/sys/fs/cgroup/training.slice/job-7.scope/memory.current
printf 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n' > $d/sys/fs/cgroup/training.slice/job-7.scope/memory.events

# quota-v1: 8 online CPUs; cpu,cpuacct v1 with cfs quota 600000/100000 (6 CPUs) on the job,
# none (-1) above; memory v1 limit 16 GiB with 4 GiB used; 32 GiB RAM, 30 GiB available, 8 GiB swap.
d=quota-v1
mkdir -p $d/proc/200 $d/sys/devices/system/cpu $d/sys/fs/cgroup/cpu/batch/job9 \
  $d/sys/fs/cgroup/memory/batch/job9
ln -s 200 $d/proc/self
printf '5:cpu,cpuacct:/batch/job9\n4:memory:/batch/job9\n0::/\n' > $d/proc/200/cgroup
meminfo 33554432 31457280 8388608 > $d/proc/meminfo
vmstat > $d/proc/vmstat
echo "0-7" > $d/sys/devices/system/cpu/online
for dir in $d/sys/fs/cgroup/cpu $d/sys/fs/cgroup/cpu/batch; do
  echo "-1" > $dir/cpu.cfs_quota_us; echo "100000" > $dir/cpu.cfs_period_us
done
echo "600000" > $d/sys/fs/cgroup/cpu/batch/job9/cpu.cfs_quota_us
echo "100000" > $d/sys/fs/cgroup/cpu/batch/job9/cpu.cfs_period_us
for dir in $d/sys/fs/cgroup/memory $d/sys/fs/cgroup/memory/batch; do
  echo "9223372036854771712" > $dir/memory.limit_in_bytes; echo "4294967296" > $dir/memory.usage_in_bytes
done
echo "17179869184" > $d/sys/fs/cgroup/memory/batch/job9/memory.limit_in_bytes
echo "4294967296" > $d/sys/fs/cgroup/memory/batch/job9/memory.usage_in_bytes
printf 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n' > $d/sys/fs/cgroup/memory/batch/job9/memory.oom_control

# no-quota: CPUs 0-3,8-11 online (8); cpu.max "max" on the leaf; no memory limit; 8 GiB RAM,
# 6 GiB available (3 workers' worth).
d=no-quota
mkdir -p $d/proc/300 $d/sys/devices/system/cpu $d/sys/fs/cgroup/user.slice
ln -s 300 $d/proc/self
echo "0::/user.slice" > $d/proc/300/cgroup
meminfo 8388608 6291456 0 > $d/proc/meminfo
vmstat > $d/proc/vmstat
echo "0-3,8-11" > $d/sys/devices/system/cpu/online
echo "cpu memory" > $d/sys/fs/cgroup/cgroup.controllers
echo "max 100000" > $d/sys/fs/cgroup/user.slice/cpu.max
echo "max" > $d/sys/fs/cgroup/user.slice/memory.max
echo "1073741824" > $d/sys/fs/cgroup/user.slice/memory.current

# bad-files: an online list and a cpu.max that do not parse (each becomes a note; the CPUs then
# count as 1 on a fixture root, the quota as none), 4 GiB RAM.
d=bad-files
mkdir -p $d/proc/400 $d/sys/devices/system/cpu $d/sys/fs/cgroup/job
ln -s 400 $d/proc/self
echo "0::/job" > $d/proc/400/cgroup
meminfo 4194304 2097152 0 > $d/proc/meminfo
vmstat > $d/proc/vmstat
echo "all of them" > $d/sys/devices/system/cpu/online
echo "cpu memory" > $d/sys/fs/cgroup/cgroup.controllers
echo "lots 100000" > $d/sys/fs/cgroup/job/cpu.max
