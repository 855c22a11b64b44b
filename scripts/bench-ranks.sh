#!/usr/bin/env bash
# Data-parallel SmallerVGGNet training on this machine (docs/distributed.md):
#   1. one process with 2 threads against 2 processes with 1 thread each (shared memory);
#   2. two simulated hosts: network namespaces joined by a veth pair limited to 1 Gbit/s with
#      tc htb, one process in each, gradients over TCP, with and without overlapping the
#      allreduce with backward (TAGNET_BUCKET_MB=0: one allreduce after backward).
# Prints the training images/s and the allreduce time per step (and the part hidden behind
# backward) of each run. Needs root for the namespaces, which it builds and removes itself;
# traffic stays inside them.
#   scripts/bench-ranks.sh [tagnet] [--steps 12] [--size 96] [--rate 1gbit]
set -euo pipefail
cd "$(dirname "$0")/.."
tagnet=build/native-release/tagnet
steps=12 size=96 rate=1gbit
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    -*) echo "bench-ranks: unknown option $1" >&2; exit 2 ;;
    *) tagnet=$1; shift ;;
  esac
done
[ -x "$tagnet" ] || { echo "bench-ranks: no tagnet at $tagnet (build it: cmake --build --preset native-release)" >&2; exit 1; }
tagnet=$(realpath "$tagnet")
[ "$(id -u)" -eq 0 ] || { echo "bench-ranks: needs root for the network namespaces" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

work=build/bench-ranks
mkdir -p "$work"
work=$(realpath "$work")
batch=32
# Enough pictures for `steps` batches of 32 after the 5 % kept for validation.
if [ ! -d "$work/data/dataset" ]; then
  "$tagnet" make-dataset fashion-color "$work/data" --per-class $(( (steps + 1) * batch / 9 + 8 )) >/dev/null
fi
train=(train --dataset "$work/data/dataset" --arch smallervggnet --size "$size" --epochs 1 --batch-size "$batch"
       --no-augment --val-split 0.05 --plot '' --history '' --model "$work/m.tagnet")

# The figures line of a run: "tagnet: N processes: ... images/s; allreduce ..."
figures() { grep -a "training images/s" | sed 's/^tagnet: //'; }

cpu=$(lscpu | sed -n 's/^Model name: *//p')
echo "SmallerVGGNet ${size}x${size}, global batch $batch, 1 epoch; $(nproc) cores ($cpu)"
echo "1 process x 2 threads:         $(mpirun --oversubscribe -np 1 "$tagnet" "${train[@]}" --threads 2 2>&1 | figures)"
echo "2 processes x 1 thread:        $(mpirun --oversubscribe -np 2 "$tagnet" "${train[@]}" --threads 1 2>&1 | figures)"

# Two hosts: namespaces tagnet-a (10.77.0.1) and tagnet-b (10.77.0.2) joined by a veth pair,
# each end shaped to $rate by htb (netem is not in every kernel: latency is left to the cost
# model). mpirun runs in tagnet-a and starts its daemons through an "rsh agent" that enters
# the namespace of the address it is given instead of logging in with ssh.
cleanup() { ip netns del tagnet-a 2>/dev/null || true; ip netns del tagnet-b 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add tagnet-a
ip netns add tagnet-b
ip link add veth-tagnet-a type veth peer name veth-tagnet-b
ip link set veth-tagnet-a netns tagnet-a
ip link set veth-tagnet-b netns tagnet-b
for s in a b; do
  ip=10.77.0.$([ $s = a ] && echo 1 || echo 2)
  ip -n tagnet-$s link set lo up
  ip -n tagnet-$s addr add $ip/24 dev veth-tagnet-$s
  ip -n tagnet-$s link set veth-tagnet-$s up
  ip netns exec tagnet-$s tc qdisc add dev veth-tagnet-$s root handle 1: htb default 10
  ip netns exec tagnet-$s tc class add dev veth-tagnet-$s parent 1: classid 1:10 htb rate "$rate" ceil "$rate" quantum 60000
done
agent=$work/netns-agent.sh
cat >"$agent" <<'EOF'
#!/bin/sh
# mpirun's rsh agent for the simulated hosts: "agent HOST COMMAND..." runs COMMAND in HOST's namespace.
host=$1; shift
case "$host" in 10.77.0.1) ns=tagnet-a ;; 10.77.0.2) ns=tagnet-b ;; *) echo "netns-agent: unknown host $host" >&2; exit 1 ;; esac
exec ip netns exec "$ns" /bin/sh -c "$*"
EOF
chmod +x "$agent"
printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' >"$work/hosts"
two_hosts() {
  ip netns exec tagnet-a env TAGNET_BUCKET_MB="$1" mpirun --hostfile "$work/hosts" -np 2 \
    --mca plm_rsh_agent "$agent" --mca plm_rsh_no_tree_spawn 1 -x TAGNET_BUCKET_MB \
    --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
    "$tagnet" "${train[@]}" --threads 1 2>&1 | figures
}
echo "2 hosts at $rate, overlap:    $(two_hosts 4)"
echo "2 hosts at $rate, no overlap: $(two_hosts 0)"
