/**
 * The job the node-loss tests run (tests/rl/cluster_job.test.ts across network namespaces,
 * tests/deploy/slurm_two_nodes.test.ts across two Slurm nodes): 6 steps with two rollout ranks,
 * restarts without limit, and hangs found after 2 s of missed pings. That is long enough that a
 * healthy actor on a loaded machine never misses that many (so the fault counts are exact on any
 * machine), and well before Slurm itself reports a lost node to srun (when it marks the node down),
 * so the supervisor is the one that notices.
 */
export function nodeLossJobArgs(runDir: string, seed: number): string[] {
  return [
    `trainer.run_dir=${runDir}`, "trainer.total_steps=6", "trainer.val_interval=3", `trainer.seed=${seed}`,
    "data.train_size=64", "data.val_size=8", "data.train_batch_size=6",
    "worker.actor.ppo_mini_batch_size=6", "worker.rollout.ranks=2",
    "fault_tolerance.max_restarts=-1", "fault_tolerance.max_task_retries=-1",
    "fault_tolerance.ping_interval_s=0.1", "fault_tolerance.ping_timeout_s=2",
    "fault_tolerance.restart_backoff_initial_s=0.005", "fault_tolerance.restart_intensity=1000",
  ];
}
