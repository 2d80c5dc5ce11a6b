/**
 * `bun run train` / `deno task train`: resolves the configuration and runs a training job.
 *
 *   bun run train [--config file.yaml] [key.sub=value ...]
 *   bun run train --print-config [...]   the resolved configuration as YAML, then exit
 *   bun run train --print-schema         the configuration's JSON Schema, then exit
 */
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { ConfigError, configJsonSchema, resolveConfig } from "../../config/index.ts";
import { loadNative, NativeAddonError } from "../../native/loader.ts";
import { formatDeviceInfo } from "../../native/device_report.ts";

const USAGE = `usage: bun run train [--config file.yaml] [--print-config] [--print-schema] [key.sub=value ...]`;

function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: "string" },
        "print-config": { type: "boolean" },
        "print-schema": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

class UsageError extends Error {}

export function main(argv: string[]): number {
  try {
    const { values, positionals } = parseCommandLine(argv);
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    if (values["print-schema"]) {
      console.log(JSON.stringify(configJsonSchema(), null, 2));
      return 0;
    }
    const { config } = resolveConfig({ file: values.config, args: positionals });
    if (values["print-config"]) {
      process.stdout.write(stringify(config));
      return 0;
    }
    console.log("# resolved configuration");
    process.stdout.write(stringify(config));
    console.log("\n# device");
    console.log(formatDeviceInfo(loadNative().deviceInfo()));
    return 0;
  } catch (e) {
    if (e instanceof ConfigError || e instanceof NativeAddonError) {
      console.error(e.message);
      return 2;
    }
    if (e instanceof UsageError) {
      console.error(`${e.message}\n${USAGE}`);
      return 2;
    }
    throw e;
  }
}

if (import.meta.main) process.exit(main(process.argv.slice(2)));
