/** Loaded before every Bun test file (bunfig.toml): one global clean-up after the whole run. */
import { afterAll } from "bun:test";
import { removeTempDirs } from "./tmp.ts";

afterAll(removeTempDirs);
