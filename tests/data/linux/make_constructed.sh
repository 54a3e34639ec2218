#!/bin/bash
# Writes the constructed fixture trees (everything here but this-machine, which capture.sh
# takes from a live system). They follow the formats documented in proc(5),
# Documentation/admin-guide/cgroup-v2.rst and Documentation/admin-guide/cgroup-v1/memory.rst,
# with line layouts copied from real machines. Run from anywhere:
#   tests/data/linux/make_constructed.sh
# The numbers are chosen by hand; the tests in src/collect/linux/ expect exactly them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

put() {  # put FILE CONTENT: write CONTENT (printf escapes allowed) to FILE, making its folder
  mkdir -p "$(dirname "$1")"
  printf "$2" >"$1"
}

meminfo() {  # meminfo DIR TOTAL_KB FREE_KB AVAILABLE_KB CACHED_KB SHMEM_KB SWAP_TOTAL_KB SWAP_FREE_KB
  mkdir -p "$1/proc"
  printf "MemTotal:       %s kB\nMemFree:        %s kB\nMemAvailable:   %s kB\nBuffers:           20480 kB\nCached:         %s kB\nSwapCached:            0 kB\nActive:          1048576 kB\nShmem:           %s kB\nSwapTotal:      %s kB\nSwapFree:       %s kB\nHugePages_Total:       0\nHugepagesize:       2048 kB\n" \
    "$2" "$3" "$4" "$5" "$6" "$7" "$8" >"$1/proc/meminfo"
}

vmstat() {  # vmstat DIR PGMAJFAULT OOM_KILL
  put "$1/proc/vmstat" "nr_free_pages 1325588\nnr_zone_inactive_anon 1488\npgpgin 123456\npgfault 9876543\npgmajfault $2\npgrefill 0\noom_kill $3\nnr_unstable 0\n"
}

psi() {  # psi DIR SOME_AVG10 SOME_AVG60 SOME_AVG300 SOME_TOTAL FULL_AVG10 FULL_AVG60 FULL_AVG300 FULL_TOTAL
  put "$1/proc/pressure/memory" "some avg10=$2 avg60=$3 avg300=$4 total=$5\nfull avg10=$6 avg60=$7 avg300=$8 total=$9\n"
}

stat_line() {  # stat_line PID COMM STATE PPID FLAGS STARTTIME
  printf '%s (%s) %s %s %s %s 0 -1 %s 1200 0 3 0 150 40 0 0 20 0 1 0 %s 123456789 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0\n' \
    "$1" "$2" "$3" "$4" "$4" "$4" "$5" "$6"
}

process() {  # process DIR PID COMM STATE PPID START PAGES CMDLINE ENVIRON [RSS PSS PCLEAN PDIRTY SWAP (kB)]
  # CMDLINE and ENVIRON separate their items with '|', written as NUL.
  local dir=$1/proc/$2
  mkdir -p "$dir"
  stat_line "$2" "$3" "$4" "$5" 4194304 "$6" >"$dir/stat"
  if [[ $7 == 0 ]]; then
    echo '0 0 0 0 0 0 0' >"$dir/statm"  # as a zombie's: no address space
  else
    printf '%s %s 500 20 0 %s 0\n' "$(($7 * 3 + 1000))" "$7" "$(($7 / 2))" >"$dir/statm"
  fi
  printf '%s' "$8" | tr '|' '\0' >"$dir/cmdline"
  printf '%s' "$9" | tr '|' '\0' >"$dir/environ"
  if [[ $# -ge 14 ]]; then
    printf '%s\n' \
      "55d5c1a00000-7ffc3a7f1000 ---p 00000000 00:00 0                          [rollup]" \
      "Rss:            ${10} kB" "Pss:            ${11} kB" "Pss_Dirty:      ${13} kB" \
      "Pss_Anon:       ${13} kB" "Pss_File:       0 kB" "Pss_Shmem:      0 kB" \
      "Shared_Clean:   0 kB" "Shared_Dirty:   0 kB" "Private_Clean:  ${12} kB" \
      "Private_Dirty:  ${13} kB" "Referenced:     ${10} kB" "Anonymous:      ${13} kB" \
      "LazyFree:       0 kB" "AnonHugePages:  0 kB" "Swap:           ${14} kB" "SwapPss:        ${14} kB" \
      "Locked:         0 kB" >"$dir/smaps_rollup"
  fi
}

# --- (b) cgroup-v1: a Kubernetes-style v1 hierarchy, memory controller at sys/fs/cgroup/memory.
d=$here/cgroup-v1
rm -rf "$d"
meminfo "$d" 16777216 8388608 12582912 4194304 65536 0 0
vmstat "$d" 4321 2
psi "$d" 0.50 0.20 0.05 1234567 0.10 0.04 0.01 234567
put "$d/proc/3000/cgroup" "12:memory:/kubepods/burstable/pod7f3a/ctr1\n11:cpu,cpuacct:/kubepods/burstable/pod7f3a/ctr1\n3:pids:/kubepods/burstable/pod7f3a/ctr1\n1:name=systemd:/kubepods/burstable/pod7f3a/ctr1\n"
put "$d/proc/3001/cgroup" "7:blkio:/batch/job9\n5:cpu,memory:/batch/job9\n1:name=systemd:/batch/job9\n"
ln -s 3000 "$d/proc/self"
m=$d/sys/fs/cgroup/memory
unlimited=9223372036854771712
for cg in "" /kubepods /kubepods/burstable /batch; do put "$m$cg/memory.limit_in_bytes" "$unlimited\n"; done
put "$m/memory.usage_in_bytes" "9000000000\n"
put "$m/kubepods/memory.usage_in_bytes" "3000000000\n"
put "$m/kubepods/burstable/memory.usage_in_bytes" "2000000000\n"
put "$m/kubepods/burstable/pod7f3a/memory.limit_in_bytes" "1610612736\n"  # 1.5 GiB
put "$m/kubepods/burstable/pod7f3a/memory.usage_in_bytes" "900000000\n"
leaf=$m/kubepods/burstable/pod7f3a/ctr1
put "$leaf/memory.limit_in_bytes" "1073741824\n"  # 1 GiB: the tightest
put "$leaf/memory.usage_in_bytes" "805306368\n"   # 768 MiB
put "$leaf/memory.memsw.usage_in_bytes" "838860800\n"  # 800 MiB: 32 MiB in swap
put "$leaf/memory.oom_control" "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"
put "$leaf/memory.failcnt" "17\n"
put "$m/batch/memory.limit_in_bytes" "268435456\n"  # 256 MiB on the parent: tighter than the leaf
put "$m/batch/memory.usage_in_bytes" "250000000\n"
put "$m/batch/job9/memory.limit_in_bytes" "536870912\n"
put "$m/batch/job9/memory.usage_in_bytes" "200000000\n"
put "$m/batch/job9/memory.oom_control" "oom_kill_disable 1\nunder_oom 1\noom_kill 0\n"
put "$m/batch/job9/memory.failcnt" "3\n"

# --- (c) cgroup-v2-limit: 2 GiB on the parent slice, 4 GiB on the leaf scope.
d=$here/cgroup-v2-limit
rm -rf "$d"
meminfo "$d" 33554432 16777216 20971520 8388608 131072 8388608 8000000
vmstat "$d" 98765 3
psi "$d" 12.34 5.67 1.23 987654321 8.90 3.21 0.98 123456789
put "$d/proc/4000/cgroup" "0::/training.slice/job-42.scope\n"
ln -s 4000 "$d/proc/self"
c=$d/sys/fs/cgroup
put "$c/cgroup.controllers" "cpuset cpu io memory hugetlb pids rdma misc\n"
put "$c/memory.stat" "anon 0\n"  # the root has memory.stat but no memory.current or memory.max
put "$c/training.slice/memory.max" "2147483648\n"
put "$c/training.slice/memory.current" "2000000000\n"
put "$c/training.slice/memory.events" "low 0\nhigh 0\nmax 60\noom 4\noom_kill 3\noom_group_kill 0\n"
put "$c/training.slice/memory.swap.current" "1048576\n"
put "$c/training.slice/job-42.scope/memory.max" "4294967296\n"
put "$c/training.slice/job-42.scope/memory.current" "1800000000\n"
put "$c/training.slice/job-42.scope/memory.events" "low 0\nhigh 0\nmax 57\noom 4\noom_kill 3\noom_group_kill 0\n"
put "$c/training.slice/job-42.scope/memory.swap.current" "1048576\n"

# --- (d) no-psi: a kernel without /proc/pressure; v2 cgroups without limits.
d=$here/no-psi
rm -rf "$d"
meminfo "$d" 8388608 1048576 2097152 1048576 32768 1048576 1048576
vmstat "$d" 55 0
put "$d/proc/5000/cgroup" "0::/user.slice/user-1000.slice/session-3.scope\n"
ln -s 5000 "$d/proc/self"
c=$d/sys/fs/cgroup
put "$c/cgroup.controllers" "cpu io memory pids\n"
for cg in /user.slice /user.slice/user-1000.slice /user.slice/user-1000.slice/session-3.scope; do
  put "$c$cg/memory.max" "max\n"
done
put "$c/user.slice/memory.current" "3000000000\n"
put "$c/user.slice/user-1000.slice/memory.current" "2500000000\n"
put "$c/user.slice/user-1000.slice/session-3.scope/memory.current" "1234567890\n"
put "$c/user.slice/user-1000.slice/session-3.scope/memory.events" "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n"

# --- (f) container-v2-root: inside a container with a cgroup namespace, /proc/self/cgroup says
# "0::/" and the container's own cgroup (with its limit) is mounted at sys/fs/cgroup.
d=$here/container-v2-root
rm -rf "$d"
meminfo "$d" 67108864 60000000 62000000 1000000 16384 0 0
vmstat "$d" 7 1
psi "$d" 0.00 0.00 0.00 0 0.00 0.00 0.00 0
put "$d/proc/1/cgroup" "0::/\n"
ln -s 1 "$d/proc/self"
c=$d/sys/fs/cgroup
put "$c/cgroup.controllers" "cpu io memory pids\n"
put "$c/memory.max" "1073741824\n"
put "$c/memory.current" "536870912\n"
put "$c/memory.events" "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\noom_group_kill 0\n"
put "$c/memory.swap.current" "0\n"

# --- (e) process-tree: a torchrun-style job, its DataLoader workers, and hard cases.
d=$here/process-tree
rm -rf "$d"
meminfo "$d" 67108864 30000000 50000000 8000000 65536 0 0
vmstat "$d" 100 0
# DIR PID COMM STATE PPID START PAGES CMDLINE ENVIRON RSS PSS PRIVATE_CLEAN PRIVATE_DIRTY SWAP
process "$d" 1 systemd S 0 1 3000 '/sbin/init|splash|' 'HOME=/|TERM=linux|' 12000 5000 1000 3000 0
mkdir -p "$d/proc/2"
stat_line 2 kthreadd S 0 2129984 2 >"$d/proc/2/stat"  # PF_KTHREAD; no memory files to read
printf '0 0 0 0 0 0 0\n' >"$d/proc/2/statm"
: >"$d/proc/2/cmdline"
process "$d" 900 bash S 1 5000 1200 '-bash|' 'LANG=C.UTF-8|TERM=xterm|' 4800 1500 100 900 0
process "$d" 2210 'evil) (name' S 900 6000 500 './evil|' 'LANG=C|' 2000 1000 200 600 0
process "$d" 4100 torchrun S 900 10000 25600 \
  '/usr/bin/python3|/usr/local/bin/torchrun|--nproc_per_node=2|train.py|' \
  'LANG=C.UTF-8|OMP_NUM_THREADS=1|' 102400 80000 10000 60000 1024
ranks0='LANG=C.UTF-8|MASTER_ADDR=127.0.0.1|MASTER_PORT=29500|RANK=0|LOCAL_RANK=0|WORLD_SIZE=2|'
ranks1='LANG=C.UTF-8|MASTER_ADDR=127.0.0.1|MASTER_PORT=29500|RANK=1|LOCAL_RANK=1|WORLD_SIZE=2|'
process "$d" 4110 python3 S 4100 10100 524288 '/usr/bin/python3|-u|train.py|--epochs|3|' \
  "$ranks0" 2097152 1900000 50000 1700000 4096
process "$d" 4111 python3 R 4100 10101 512000 '/usr/bin/python3|-u|train.py|--epochs|3|' \
  "$ranks1" 2048000 1850000 50000 1650000 0
# DataLoader workers are forked from rank 0: same cmdline and environ, memory shared copy-on-write.
process "$d" 4120 pt_data_worker S 4110 10200 262144 '/usr/bin/python3|-u|train.py|--epochs|3|' \
  "$ranks0" 1048576 400000 1000 150000 0
process "$d" 4121 pt_data_worker S 4110 10201 262144 '/usr/bin/python3|-u|train.py|--epochs|3|' \
  "$ranks0" 1048576 410000 1000 160000 0
# A worker that exited and was not reaped yet: state Z, no address space (no smaps_rollup).
process "$d" 4122 pt_data_worker Z 4110 10202 0 '' ''
# Processes that exited while being listed: one after its stat was read, one before anything.
mkdir -p "$d/proc/4198" "$d/proc/4199"
: >"$d/proc/4199/.gitkeep"  # git keeps no empty folder; the collector never reads this name
stat_line 4198 python3 S 4110 4194304 10300 >"$d/proc/4198/stat"
ln -s 4110 "$d/proc/self"
# Files the test's FileAccess answers with EACCES (see README.md: a root test runner can read
# every plain file, so the permission failure is injected, and this list says where).
printf 'proc/1/smaps_rollup\nproc/1/environ\n' >"$d/eacces.txt"

echo "wrote cgroup-v1 cgroup-v2-limit no-psi container-v2-root process-tree under $here"
