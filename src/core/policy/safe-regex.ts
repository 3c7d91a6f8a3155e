// Route-match regexes run on every request, on header values and paths a caller chooses.
// Envoy uses RE2, which matches in linear time; JavaScript's engine backtracks, so a
// pattern such as (a+)+$ can take exponential time on a crafted value and stall the
// sidecar. remora accepts the patterns that cannot backtrack catastrophically: no
// backreferences or lookarounds (RE2 has neither), and no repetition (* + {n,}) of a group
// that itself repeats or alternates.

/** Why `pattern` is refused, or undefined when it is safe to run on untrusted input. */
export function unsafeRegexReason(pattern: string): string | undefined {
  if (/\\[1-9]|\\k</.test(pattern)) return "backreferences are not supported (RE2 syntax)";
  if (/\(\?<?[=!]/.test(pattern)) return "lookarounds are not supported (RE2 syntax)";
  // For each open group: whether its body repeats or alternates.
  const groups: boolean[] = [];
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      i++;
      continue;
    }
    if (inClass) {
      if (c === "]") inClass = false;
      continue;
    }
    if (c === "[") inClass = true;
    else if (c === "(") groups.push(false);
    else if (c === "|") markTop(groups);
    else if (c === "*" || c === "+" || (c === "{" && /^\{\d*,?\d*\}/.test(pattern.slice(i)))) markTop(groups);
    else if (c === ")") {
      const risky = groups.pop() ?? false;
      if (risky && repeatsAt(pattern, i + 1)) return "a repeated group may not itself repeat or alternate, e.g. (a+)+ or (a|ab)*: it can take exponential time on a crafted value";
      // The group as a whole is a repeating or alternating piece of its parent only if quantified.
      if (repeatsAt(pattern, i + 1) || risky) markTop(groups);
    }
  }
  return undefined;
}

function markTop(groups: boolean[]): void {
  if (groups.length > 0) groups[groups.length - 1] = true;
}

/** Whether a quantifier that repeats more than once starts at `i` (`?` alone does not repeat). */
function repeatsAt(pattern: string, i: number): boolean {
  const c = pattern[i];
  if (c === "*" || c === "+") return true;
  if (c === "{") {
    const m = /^\{(\d*)(,?)(\d*)\}/.exec(pattern.slice(i));
    if (!m) return false;
    return m[2] === "," ? m[3] === "" || Number(m[3]) > 1 : Number(m[1]) > 1;
  }
  return false;
}
