import type { BenchResults, BootResults, KernelCondition, LocalResults, RemoteCondition, RssResults, Target } from './results.mjs'

export declare function localReport(local: Pick<LocalResults, 'source' | 'mounts'>): string
export declare function remoteReport(condition: RemoteCondition, sourceSeq: number, settings: { seqSeconds: number }): string
/** undefined when no part measured starts. */
export declare function startReport(results: BenchResults): string | undefined
export declare function targetsReport(targets: Target[]): string
export declare function localSection(local: LocalResults, settings: { seqDaemons: number; fioSeconds: number }): string
export declare function remoteSection(condition: RemoteCondition, sourceSeq: number, settings: { seqSeconds: number }): string
export declare function kernelReport(condition: KernelCondition): string
/** Just the title and the notes when the part could not run (no mounts). */
export declare function kernelSection(condition: KernelCondition): string
export declare function peersSection(results: BenchResults): string
export declare function rssSection(rss: RssResults): string
export declare function startSection(results: BenchResults): string
export declare function targetsSection(targets: Target[]): string
export declare function footer(results: BenchResults, file: string): string
/** The boot part's table: a row per way of serving the guest's image. */
export declare function bootReport(boot: BootResults): string
/** Issue 19's table of the rows with a boot profile; '' without any. */
export declare function bootProfileReport(boot: BootResults): string
/** The boot table with its title lines and the guest's read summary. */
export declare function bootSection(boot: BootResults): string
/** Issue 20's overhead table and bit-flipping rows; '' when no condition had a manifest mount. */
export declare function integritySection(results: BenchResults): string
