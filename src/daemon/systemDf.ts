// `docker system df`: GET /system/df, what the daemon's images, containers and volumes take on
// disk, in dockerd's shape. Images share layers: an image's SharedSize is what it has in
// common with another image, LayersSize every layer once. A container's SizeRw is its writable
// layer (the record's GraphDriver UpperDir); a volume's UsageData is its data and the number
// of containers that mount it. husk builds nothing, so BuildCache is always empty.
import type { Route } from './api';
import { summary } from './containers';
import { diskUsage } from '../host/diskUsage';
import type { DaemonContext } from './context';
import { imageViews } from './images';
import { listRecords, type ContainerRecord } from './records';
import { listVolumes, volumeUsers } from './volumes';

/** A name in Docker's reference form (`repo[:tag]`), not a husk transport's (`docker-archive:/x.tar`). */
const REFERENCE = /^[\w.-]+(?::\d+)?(?:\/[\w.-]+)*(?::\w[\w.-]{0,127})?$/;

function images(ctx: DaemonContext, containers: ContainerRecord[]) {
  const views = imageViews(ctx.images);
  const layerSize = (diffId: string) => ctx.images.layerMeta(diffId)?.contentSize ?? 0;
  // How many images hold each layer: those held by more than one are shared.
  const holders = new Map<string, number>();
  for (const v of views) for (const d of new Set(v.config.rootfs.diff_ids)) holders.set(d, (holders.get(d) ?? 0) + 1);
  let layersSize = 0;
  for (const d of holders.keys()) layersSize += layerSize(d);
  const summaries = views.map((v) => {
    const dangling = !v.repoTags.length && !v.repoDigests.length;
    let shared = 0;
    for (const d of new Set(v.config.rootfs.diff_ids)) if ((holders.get(d) ?? 0) > 1) shared += layerSize(d);
    const created = Date.parse(v.config.created ?? '');
    return {
      Id: v.id,
      ParentId: '',
      // The CLI shows the first tag, and skips the image when it is not a reference.
      RepoTags: dangling ? ['<none>:<none>'] : [...v.repoTags.filter((t) => REFERENCE.test(t)), ...v.repoTags.filter((t) => !REFERENCE.test(t))],
      RepoDigests: dangling ? ['<none>@<none>'] : v.repoDigests,
      Created: Number.isFinite(created) ? Math.floor(created / 1000) : 0,
      Size: v.size,
      SharedSize: shared,
      VirtualSize: v.size,
      Labels: v.config.config?.Labels ?? {},
      Containers: containers.filter((c) => c.Image === v.id).length,
    };
  });
  return { layersSize, summaries };
}

function containerSummary(r: ContainerRecord, imageSizes: Map<string, number>) {
  const sizeRw = diskUsage(r.GraphDriver.Data.UpperDir ?? '');
  return { ...summary(r), SizeRw: sizeRw, SizeRootFs: sizeRw + (imageSizes.get(r.Image) ?? 0) };
}

export function routes(ctx: DaemonContext): Route[] {
  return [
    {
      method: 'GET',
      path: '/system/df',
      handle(_req, res) {
        const records = listRecords(ctx);
        const { layersSize, summaries } = images(ctx, records);
        const imageSizes = new Map(summaries.map((i) => [i.Id, i.Size]));
        res.json({
          LayersSize: layersSize,
          Images: summaries,
          Containers: records.map((r) => containerSummary(r, imageSizes)),
          Volumes: listVolumes(ctx).map((v) => {
            const { Anonymous: _anonymous, ...view } = v;
            return { ...view, UsageData: { Size: diskUsage(v.Mountpoint), RefCount: volumeUsers(ctx, v.Name).length } };
          }),
          BuildCache: [],
        });
      },
    },
  ];
}
