// Attention: a short WebAudio beep (no sound file) and a count in the title.

const BASE_TITLE = 'Balas';
let unseen = 0;
let audio = null;

/** Creates or resumes the AudioContext; call from a user gesture. */
export function unlockAudio() {
  try {
    audio = audio || new AudioContext();
    if (audio.state === 'suspended') audio.resume();
  } catch {
    audio = null;
  }
}

/** Two short tones, quiet. */
export function beep() {
  if (!audio) return;
  try {
    const now = audio.currentTime;
    for (const [offset, freq] of [[0, 880], [0.16, 1175]]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = 'sine';
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + offset);
      gain.gain.exponentialRampToValueAtTime(0.2, now + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.14);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + offset);
      osc.stop(now + offset + 0.15);
    }
  } catch {
    // Sound is a nicety.
  }
}

/** Counts one more unseen handoff in the title. */
export function badge() {
  unseen += 1;
  document.title = `(${unseen}) ${BASE_TITLE}`;
}

/** Clears the title count. */
export function clearBadge() {
  unseen = 0;
  document.title = BASE_TITLE;
}
