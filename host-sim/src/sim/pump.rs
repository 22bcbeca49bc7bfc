//! Running what callbacks leave behind: call-outs handed to [`CallOuts`], deferred stream
//! actions, answers delivered to root contexts, and shared-queue notifications.

use super::callouts::{Answered, PendingRedisCall};
use super::*;

impl Sim {
    /// Registers the call-outs and queues the deferred actions a callback produced.
    pub(crate) fn apply_effects(&mut self, vm_key: usize, e: Effects) {
        let origin = self.locate_vm(vm_key);
        let now = self.mono_ns();
        for (root, call) in e.http_calls {
            self.calls.push_http(vm_key, origin, root, call, now);
        }
        for (root, call) in e.grpc_calls {
            self.calls.push_grpc(vm_key, root, call);
        }
        for (root, call) in e.redis_calls {
            let timeout_ms = self
                .chain
                .vm(vm_key)
                .and_then(|vm| vm.store.data().redis_inited.get(&call.cluster).copied())
                .unwrap_or(1000);
            self.calls.push_redis(vm_key, root, call, timeout_ms);
        }
        for d in e.deferred {
            if let Deferred::CancelGrpc { token } = d {
                self.calls.cancel_grpc(vm_key, token);
                continue;
            }
            self.defer(vm_key, d);
        }
    }

    /// The chain index and worker of a VM (past the chain's end for a VM no plugin uses).
    fn locate_vm(&self, vm_key: usize) -> (usize, usize) {
        self.chain.owner_of(vm_key)
    }

    /// While `hold` is true, Higress Redis calls are kept instead of sent, so a test can act
    /// while one is in flight (for example the client goes away); setting it back to false
    /// sends the held calls to their Redis servers in order and delivers the replies.
    pub fn hold_redis(&mut self, hold: bool) {
        self.calls.hold_redis(hold);
        if !hold {
            self.pump();
        }
    }

    /// Number of Redis calls waiting to be sent (held, see [`Sim::hold_redis`]).
    pub fn pending_redis_calls(&self) -> usize {
        self.calls.pending_redis()
    }

    /// The calls these VMs made that still wait for an answer, described (for stall reports).
    pub(crate) fn calls_waiting(&self, vms: &[usize]) -> Vec<String> {
        self.calls.waiting_for(vms)
    }

    /// The HTTP call-outs made, in order (for reports; the most recent 10,000 at most).
    pub fn http_call_log(&self) -> &[HttpCallRecord] {
        self.calls.log()
    }

    /// HTTP call-outs waiting for an answer (calls to `Cluster::Manual` clusters).
    pub fn pending_http_calls(&self) -> Vec<PendingHttpCall> {
        self.calls.pending_http().to_vec()
    }

    /// gRPC call-outs waiting for an answer.
    pub fn pending_grpc_calls(&self) -> Vec<PendingGrpcCall> {
        self.calls.pending_grpc().to_vec()
    }

    /// Answers a pending HTTP call-out; the plugin's root context gets
    /// `on_http_call_response` and whatever it does then runs.
    pub fn answer_http(&mut self, id: u64, reply: CallReply) -> Result<()> {
        let p = self
            .calls
            .take_http(id)
            .ok_or_else(|| anyhow!("no pending call {id}"))?;
        self.deliver_http(p, reply);
        self.pump();
        Ok(())
    }

    fn deliver_http(&mut self, p: PendingHttpCall, reply: CallReply) {
        self.on_root(p.vm, p.root, |vm| {
            let _ = vm.on_http_call_response(p.root, p.call.token, reply.into_data());
        });
    }

    /// Answers a pending gRPC call: `Ok(message)` calls `on_grpc_receive`, `Err((status,
    /// message))` calls `on_grpc_close`.
    pub fn answer_grpc(&mut self, id: u64, reply: Result<Vec<u8>, (u32, String)>) -> Result<()> {
        let p = self
            .calls
            .take_grpc(id)
            .ok_or_else(|| anyhow!("no pending gRPC call {id}"))?;
        self.deliver_grpc(p, reply);
        self.pump();
        Ok(())
    }

    fn deliver_grpc(&mut self, p: PendingGrpcCall, reply: Result<Vec<u8>, (u32, String)>) {
        self.on_root(p.vm, p.root, |vm| {
            let _ = match reply {
                Ok(msg) => vm.on_grpc_receive(p.root, p.call.token, msg),
                Err((code, msg)) => vm.on_grpc_close(p.root, p.call.token, code, msg),
            };
        });
    }

    fn deliver_redis(&mut self, p: PendingRedisCall, status: i32, reply: Vec<u8>) {
        self.on_root(p.vm, p.root, |vm| {
            let _ = vm.on_redis_call_response(p.root, p.call.token, status, reply);
        });
    }

    /// Runs a callback of root context `root` on VM `vm_key` when that VM is alive and still
    /// has the context (answers to a failed VM or a finished root are dropped, as in Envoy),
    /// then handles what the callback did.
    fn on_root(&mut self, vm_key: usize, root: u32, f: impl FnOnce(&mut Vm)) {
        let Some(vm) = self.chain.vm_mut(vm_key) else {
            return;
        };
        if vm.failed || !vm.store.data().contexts.contains_key(&root) {
            return;
        }
        f(vm);
        let eff = vm.take_effects();
        self.after_vm_call(vm_key, eff);
    }

    /// Handles a VM's effects after a root-level callback (trap handling included).
    pub(crate) fn after_vm_call(&mut self, vm_key: usize, eff: Effects) {
        self.apply_effects(vm_key, eff);
        if self.chain.vm_failed(vm_key) {
            self.fail_vm_streams(vm_key);
        }
    }

    /// Runs queued work, real call-outs and queue notifications until nothing is left.
    pub fn pump(&mut self) {
        for _ in 0..100_000 {
            if let Some(w) = self.work.pop_front() {
                match w {
                    Work::Deferred { vm, d } => self.apply_deferred(vm, d),
                }
                continue;
            }
            if let Some(answered) = self.calls.call_next_real() {
                match answered {
                    Answered::Http(p, reply) => self.deliver_http(p, reply),
                    Answered::Grpc(p, reply) => self.deliver_grpc(p, reply),
                    Answered::Redis(p, status, reply) => self.deliver_redis(p, status, reply),
                }
                continue;
            }
            let ready = self
                .host
                .lock()
                .map(|mut h| std::mem::take(&mut h.queue_ready))
                .unwrap_or_default();
            if ready.is_empty() {
                break;
            }
            for (vm_key, root, q) in ready {
                self.on_root(vm_key, root, |vm| {
                    let _ = vm.on_queue_ready(root, q);
                });
            }
        }
    }
    fn apply_deferred(&mut self, vm: usize, d: Deferred) {
        match d {
            Deferred::Done { ctx } => {
                if let Some(v) = self.chain.vm_mut(vm) {
                    let _ = v.on_delete(ctx);
                }
            }
            Deferred::CancelGrpc { .. } => {}
            other => {
                let ctx = match &other {
                    Deferred::Continue { ctx, .. }
                    | Deferred::Close { ctx }
                    | Deferred::LocalReply { ctx, .. } => *ctx,
                    _ => return,
                };
                if let Some((sid, filter)) = self.streams.by_ctx(vm, ctx) {
                    self.stream_action(sid, filter, other);
                }
            }
        }
    }
}
