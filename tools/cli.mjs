// Command-line plumbing shared by the tools' scripts: one error line and exit 1, and `--name value` options
// taken out of the argument list (what remains are the positional arguments).
export function command(script) {
  const args = process.argv.slice(2);
  const fail = message => {
    process.stderr.write(`${script}: ${String(message).split('\n')[0]}\n`);
    process.exit(1);
  };
  const option = (name, fallback) => {
    const i = args.indexOf(name);
    if (i < 0) return fallback;
    if (i + 1 >= args.length) fail(`${name} needs a value`);
    const v = args[i + 1];
    args.splice(i, 2);
    return v;
  };
  return { args, fail, option };
}
