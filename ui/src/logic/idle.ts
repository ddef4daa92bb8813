// The idle lock: fires once after `seconds` without user input. Pure, so that it is tested
// with fake timers; the React hook wires it to DOM events.

export class IdleTimer {
  private handle: ReturnType<typeof setTimeout> | undefined;
  private fired = false;

  constructor(
    private readonly seconds: number,
    private readonly onIdle: () => void,
  ) {}

  /** Starts, or restarts after activity. Does nothing once fired. */
  touch(): void {
    if (this.fired) return;
    if (this.handle !== undefined) clearTimeout(this.handle);
    this.handle = setTimeout(() => {
      this.fired = true;
      this.handle = undefined;
      this.onIdle();
    }, this.seconds * 1000);
  }

  stop(): void {
    if (this.handle !== undefined) clearTimeout(this.handle);
    this.handle = undefined;
  }
}

/** DOM events that count as the user being there. */
export const ACTIVITY_EVENTS = ["keydown", "mousedown", "mousemove", "wheel", "touchstart"] as const;
