#!/usr/bin/env bash
# A real torch.distributed job (gloo, CPU) with 2 ranks on each of 2 "nodes", a memscope worker
# per node and a master: rank 3 (on node-b) keeps a large buffer. The master's JSON must name
# rank 3 and node-b as the divergent rank and the bottleneck, and carry all 4 ranks with their
# processes on the right nodes.
#
# Nodes are network namespaces joined by veth pairs on a bridge (the master sits on it too),
# each also with its own PID and UTS namespace, so an agent sees only its node's processes and
# its own hostname. Where network namespaces are not permitted: PID/UTS namespaces on loopback
# with distinct ports; where neither is: plain loopback, checking only the ranks.
set -euo pipefail
if ! /usr/bin/python3 -c "import torch, torch.distributed" 2>/dev/null; then
  echo "SKIP: Debian's python3-torch is not installed"
  exit 77
fi
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
suffix=$$
hub=ms-hub-$suffix a=ms-a-$suffix b=ms-b-$suffix
pids=()
cleanup() {
  # The ranks end when they see the stop file; whatever is still running then (a wrapper killed
  # before its children, an early failure) is found by this run's unique directory.
  touch "$tmp/stop" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 1
  pkill -KILL -f -- "--dir $tmp" 2>/dev/null || true
  pkill -KILL -f -- "--token-file $tmp/token" 2>/dev/null || true
  wait 2>/dev/null || true
  for ns in "$hub" "$a" "$b"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
printf 'test-token-%s\n' "$suffix" >"$tmp/token"
chmod 600 "$tmp/token"

# --- the network ---------------------------------------------------------------------------
mode=plain
if ip netns add "$hub" 2>/dev/null && ip netns add "$a" && ip netns add "$b" &&
   ip -n "$hub" link add br0 type bridge &&
   ip -n "$hub" addr add 10.77.0.1/24 dev br0 && ip -n "$hub" link set br0 up &&
   ip link add "va$suffix" type veth peer name "ha$suffix" &&
   ip link add "vb$suffix" type veth peer name "hb$suffix" &&
   ip link set "va$suffix" netns "$a" name eth0 && ip link set "ha$suffix" netns "$hub" &&
   ip link set "vb$suffix" netns "$b" name eth0 && ip link set "hb$suffix" netns "$hub" &&
   ip -n "$hub" link set "ha$suffix" master br0 up && ip -n "$hub" link set "hb$suffix" master br0 up &&
   ip -n "$a" addr add 10.77.0.2/24 dev eth0 && ip -n "$a" link set eth0 up &&
   ip -n "$b" addr add 10.77.0.3/24 dev eth0 && ip -n "$b" link set eth0 up &&
   ip -n "$a" link set lo up && ip -n "$b" link set lo up && ip -n "$hub" link set lo up &&
   unshare -u -p -f --mount-proc true 2>/dev/null; then
  mode=netns
elif unshare -u -p -f --mount-proc true 2>/dev/null; then
  mode=pidns
fi
echo "mode: $mode"
case $mode in
  netns) master_host=10.77.0.1; ip_a=10.77.0.2; ip_b=10.77.0.3; ifname=eth0
         in_hub=(ip netns exec "$hub"); in_a=(ip netns exec "$a"); in_b=(ip netns exec "$b")
         isolate=(unshare -u -p -f --kill-child --mount-proc) ;;
  pidns) master_host=127.0.0.1; ip_a=127.0.0.1; ip_b=127.0.0.1; ifname=lo
         in_hub=(); in_a=(); in_b=(); isolate=(unshare -u -p -f --kill-child --mount-proc) ;;
  *)     master_host=127.0.0.1; ip_a=127.0.0.1; ip_b=127.0.0.1; ifname=lo
         in_hub=(); in_a=(); in_b=(); isolate=() ;;
esac

# --- the master ----------------------------------------------------------------------------
"${in_hub[@]}" "$MEMSCOPE_BIN" distributed --role master --listen-host "$master_host" --port 0 \
  --token-file "$tmp/token" --interval 0.5 --stale-after 3 --output "$tmp/cluster.json" \
  2>"$tmp/master.err" &
master=$!
pids+=("$master")
master_port=
for _ in $(seq 100); do
  master_port=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\).*/\1/p' "$tmp/master.err" | head -1)
  [ -n "$master_port" ] && break
  sleep 0.1
done
[ -n "$master_port" ] || { echo "FAIL: the master did not start"; cat "$tmp/master.err"; exit 1; }

# --- the nodes: a worker and two ranks each -------------------------------------------------
export MEMSCOPE_BIN tmp here master_host master_port ifname
export MASTER_ADDR=$ip_a MASTER_PORT=$((29500 + suffix % 400)) WORLD_SIZE=4
node() {  # name, address, first rank
  local name=$1 address=$2 first=$3
  [ "$mode" = plain ] || hostname "$name"
  "$MEMSCOPE_BIN" distributed --role worker --master-host "$master_host" --port "$master_port" \
    --listen "$address:0" --token-file "$tmp/token" --interval 0.5 --no-gpu \
    2>"$tmp/worker-$name.err" &
  local worker=$! ranks=()
  for local_rank in 0 1; do
    RANK=$((first + local_rank)) LOCAL_RANK=$local_rank GLOO_SOCKET_IFNAME=$ifname \
      /usr/bin/python3 "$here/torch_distributed_job.py" rank --dir "$tmp" --big-rank 3 \
      --big-mib 800 >"$tmp/rank-$((first + local_rank)).log" 2>&1 &
    ranks+=($!)
  done
  local status=0
  for pid in "${ranks[@]}"; do wait "$pid" || status=1; done
  kill "$worker" 2>/dev/null || true
  wait "$worker" 2>/dev/null || true
  return $status
}
export -f node
export mode
"${in_a[@]}" "${isolate[@]}" bash -c 'node node-a "$0" 0' "$ip_a" &
pids+=($!)
node_a=$!
"${in_b[@]}" "${isolate[@]}" bash -c 'node node-b "$0" 2' "$ip_b" &
pids+=($!)
node_b=$!

# All four ranks up and holding their memory, then a few intervals for the master to see it.
for _ in $(seq 600); do
  [ "$(ls "$tmp" | grep -c '^ready-')" -eq 4 ] && break
  if ! kill -0 "$node_a" 2>/dev/null || ! kill -0 "$node_b" 2>/dev/null; then break; fi
  sleep 0.1
done
if [ "$(ls "$tmp" | grep -c '^ready-')" -ne 4 ]; then
  echo "FAIL: the job did not start"; tail -n 20 "$tmp"/rank-*.log "$tmp"/worker-*.err; exit 1
fi
sleep 4
kill -TERM "$master"
wait "$master" || { echo "FAIL: the master exited with $?"; cat "$tmp/master.err"; exit 1; }
touch "$tmp/stop"
wait "$node_a" || { echo "FAIL: node-a's ranks failed"; tail -n 20 "$tmp"/rank-[01].log; exit 1; }
wait "$node_b" || { echo "FAIL: node-b's ranks failed"; tail -n 20 "$tmp"/rank-[23].log; exit 1; }

if [ "$mode" = plain ]; then
  # One machine, one process table: both workers report every rank; only ranks can be checked.
  /usr/bin/python3 "$here/torch_distributed_job.py" check "$tmp/cluster.json" --big-rank 3 --nodes ""
else
  /usr/bin/python3 "$here/torch_distributed_job.py" check "$tmp/cluster.json" --big-rank 3 \
    --big-node node-b --nodes node-a,node-b
fi
