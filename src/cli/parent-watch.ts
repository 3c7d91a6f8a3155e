// A sidecar started by another remora command (the demo, `remora run`) must not outlive it:
// when that parent is killed outright (SIGKILL, OOM), nothing else would stop the sidecar,
// which it spawned in a process group of its own. The parent names itself in
// REMORA_PARENT_PID; the sidecar checks it every second and drains when it is gone.

export const PARENT_PID_ENV = "REMORA_PARENT_PID";

/** Calls `onGone` once the process named by REMORA_PARENT_PID has exited; no-op when unset. */
export function watchParent(onGone: () => void, env: Record<string, string | undefined> = process.env): void {
  const pid = Number(env[PARENT_PID_ENV]);
  if (!Number.isInteger(pid) || pid <= 1) return;
  const timer: { unref?: () => void } = setInterval(() => {
    if (alive(pid)) return;
    clearInterval(timer as ReturnType<typeof setInterval>);
    onGone();
  }, 1000);
  timer.unref?.();
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to another user (a pod's sidecar runs under its own uid).
    return (e as { code?: string }).code === "EPERM";
  }
}
