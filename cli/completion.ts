// `completion bash|zsh`: a shell completion script for the `durapay` command, written from the
// command table, so a new command or flag completes without anyone editing a script.
import type { Options } from './kit.js';

export interface CompletionEntry {
  summary: string;
  options: Options;
  /** Values of the first positional argument (trigger's event types). */
  completes?: readonly string[];
}

export const SHELLS = ['bash', 'zsh'] as const;
export type Shell = (typeof SHELLS)[number];

/** Every flag a command takes, --json and --help included, as typed. */
export function commandFlags(entry: CompletionEntry): string[] {
  return [...new Set([...Object.keys(entry.options), 'json', 'help'])].map((name) => `--${name}`);
}

/** Words a shell may offer after a command: its positional values, then its flags. */
const wordsFor = (entry: CompletionEntry) => [...(entry.completes ?? []), ...commandFlags(entry)];

const singleQuoted = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

export function completionScript(shell: Shell, table: Record<string, CompletionEntry>): string {
  const names = Object.keys(table);
  if (shell === 'bash') {
    const cases = names.map((name) => `    ${singleQuoted(name)}) words=${singleQuoted(wordsFor(table[name]!).join(' '))} ;;`).join('\n');
    return `# durapay completion for bash, written by \`durapay completion bash\` from its commands.
# Load it in this shell:  source <(npx durapay completion bash)
# or for every shell:     npx durapay completion bash > ~/.local/share/bash-completion/completions/durapay
_durapay_completion() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  if [[ \${COMP_CWORD} -eq 1 ]]; then
    COMPREPLY=( $(compgen -W ${singleQuoted([...names, 'help'].join(' '))} -- "\${cur}") )
    return 0
  fi
  local words=''
  case "\${COMP_WORDS[1]}" in
${cases}
  esac
  COMPREPLY=( $(compgen -W "\${words}" -- "\${cur}") )
  return 0
}
complete -F _durapay_completion durapay
`;
  }
  const describe = names.map((name) => `    ${singleQuoted(`${name.replace(/:/g, '\\:')}:${table[name]!.summary.replace(/:/g, '\\:')}`)}`).join('\n');
  const cases = names.map((name) => `    ${singleQuoted(name)}) compadd -- ${wordsFor(table[name]!).map(singleQuoted).join(' ')} ;;`).join('\n');
  return `#compdef durapay
# durapay completion for zsh, written by \`durapay completion zsh\` from its commands.
# Load it in this shell (after compinit):  source <(npx durapay completion zsh)
# or save it as _durapay in a folder of $fpath.
_durapay() {
  local -a commands
  commands=(
${describe}
  )
  if (( CURRENT == 2 )); then
    _describe -t commands 'durapay command' commands
    return
  fi
  case "\${words[2]}" in
${cases}
  esac
}
if [[ "\${funcstack[1]}" = "_durapay" ]]; then
  _durapay "$@"
else
  compdef _durapay durapay
fi
`;
}
