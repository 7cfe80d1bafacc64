"""The model-independent part of the generated PyTorch script: weights I/O, losses, the
optimizer and schedule from the model file's training section, data loading and the
(DDP-capable) training loop. ``MODEL_CLASS`` is replaced by the generated class name."""

RUNTIME = r'''# ----- weights -------------------------------------------------------------------------------
def load_weights(model: nn.Module, path: str | os.PathLike = WEIGHTS) -> nn.Module:
    """Copy the weights saved by NetBuilder (``path``, an .npz by NetBuilder names) into
    ``model``; returns the model."""
    with np.load(path, allow_pickle=False) as f:
        state = {STATE_KEYS.get(k, k): torch.from_numpy(np.asarray(f[k], np.float32))
                 for k in f.files}
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise ValueError(f"{path} does not fit {type(model).__name__}: missing {missing}, "
                         f"unexpected {result.unexpected_keys}")
    return model


def save_weights(model: nn.Module, path: str | os.PathLike) -> None:
    """Save the weights by NetBuilder's names (the layout ``load_weights`` reads)."""
    names = {v: k for k, v in STATE_KEYS.items()}
    state = {names.get(k, k): v.detach().cpu().numpy().astype(np.float32)
             for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    np.savez(path, **state)


# ----- losses --------------------------------------------------------------------------------
INPUT_FIELDS = list(INPUTS)
LOSSES = {"cross_entropy": nn.CrossEntropyLoss(), "bce": nn.BCEWithLogitsLoss(),
          "mse": nn.MSELoss(), "pixel_cross_entropy": nn.CrossEntropyLoss()}


def target_of(output_id: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The data an Output learns: its ``target`` field ("x" = the model's own input)."""
    name = OUTPUTS[output_id]["target"]
    if name == "x":
        return batch[INPUT_FIELDS[0]]
    return batch[name] if name in batch else batch[output_id]


def compute_loss(loss_inputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
                 ) -> torch.Tensor:
    """The weighted sum of every Output's loss (means, as NetBuilder computes them)."""
    total = None
    for oid, head in OUTPUTS.items():
        pred, target = loss_inputs[oid], target_of(oid, batch)
        if head["loss"] == "cross_entropy":
            k = pred.shape[-1]
            if target.dim() == pred.dim():
                target = target.argmax(-1)
            value = LOSSES["cross_entropy"](pred.reshape(-1, k), target.reshape(-1).long())
        elif head["loss"] == "pixel_cross_entropy":  # (N, C, H, W) scores, (N, H, W) labels
            value = LOSSES["pixel_cross_entropy"](pred, target.long())
        else:
            value = LOSSES[head["loss"]](pred, target.reshape(pred.shape).to(pred.dtype))
        value = value * head["weight"] if head["weight"] != 1.0 else value
        total = value if total is None else total + value
    return total


def accuracy(loss_inputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
             ) -> float | None:
    """Mean accuracy over the classification heads (None if there are none)."""
    accs = []
    for oid, head in OUTPUTS.items():
        pred, target = loss_inputs[oid], target_of(oid, batch)
        if head["loss"] == "cross_entropy":
            if target.dim() == pred.dim():
                target = target.argmax(-1)
            accs.append((pred.argmax(-1) == target.reshape(pred.shape[:-1])).float().mean())
        elif head["loss"] == "pixel_cross_entropy":
            accs.append((pred.argmax(1) == target).float().mean())
        elif head["loss"] == "bce":
            accs.append(((pred > 0) == (target.reshape(pred.shape) > 0.5)).float().mean())
    return float(torch.stack(accs).mean()) if accs else None


def train_step(model: nn.Module, batch: dict[str, torch.Tensor],
               optimizer: torch.optim.Optimizer, clip_norm: float = 0.0) -> float:
    """One forward, loss, backward and update on ``batch`` (fields by name); the loss."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss = compute_loss(model(*[batch[f] for f in INPUT_FIELDS], loss_inputs=True), batch)
    loss.backward()
    if clip_norm:
        nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    optimizer.step()
    return float(loss.detach())


# ----- optimizer and schedule (the model file's training section) ----------------------------
def make_optimizer(model: nn.Module, settings: dict = TRAINING, lr: float | None = None
                   ) -> torch.optim.Optimizer:
    cfg = settings.get("optimizer") or {"type": "sgd"}
    cfg = {"type": cfg} if isinstance(cfg, str) else dict(cfg)
    kind = str(cfg.pop("type", "sgd")).lower()
    decay = settings.get("weight_decay") or cfg.get("weight_decay", 0.0)
    params = model.parameters()
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr or cfg.get("lr", 0.01),
                               momentum=cfg.get("momentum", 0.0),
                               nesterov=cfg.get("nesterov", False), weight_decay=decay)
    if kind in ("adam", "adamw"):
        opt = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
        return opt(params, lr=lr or cfg.get("lr", 1e-3),
                   betas=(cfg.get("beta1", 0.9), cfg.get("beta2", 0.999)),
                   eps=cfg.get("eps", 1e-8), weight_decay=decay)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr or cfg.get("lr", 1e-3),
                                   alpha=cfg.get("alpha", 0.99), eps=cfg.get("eps", 1e-8),
                                   weight_decay=decay)
    if kind == "adagrad":
        return torch.optim.Adagrad(params, lr=lr or cfg.get("lr", 1e-2),
                                   eps=cfg.get("eps", 1e-10), weight_decay=decay)
    raise ValueError(f"unknown optimizer {kind!r}")


def make_schedule(optimizer: torch.optim.Optimizer, steps_per_epoch: int, epochs: int,
                  settings: dict = TRAINING) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per batch: "step" multiplies by gamma every step_size epochs, "cosine"
    decays from the base rate to min_lr over the run."""
    conf = settings.get("schedule") or "none"
    conf = {"type": conf} if isinstance(conf, str) else conf
    kind = conf.get("type", "none")
    base = optimizer.param_groups[0]["lr"]
    total = max(1, steps_per_epoch * epochs)

    def factor(step: int) -> float:
        if kind == "step":
            return conf.get("gamma", 0.1) ** ((step // steps_per_epoch) // conf.get("step_size", 10))
        if kind == "cosine":
            lo = min(conf.get("min_lr", 0.0), base)
            t = min(1.0, step / total)
            return (lo + (base - lo) * 0.5 * (1.0 + math.cos(math.pi * t))) / base
        return 1.0
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# ----- data ----------------------------------------------------------------------------------
def preprocess(x: np.ndarray, stats: dict | None = PREPROCESS) -> np.ndarray:
    """The input normalisation the model was trained with (none, scale or standardize)."""
    x = np.asarray(x, np.float32)
    mode = (stats or {}).get("mode", "none")
    if mode == "scale":
        return (x - np.float32(stats["min"])) / np.float32(stats["max"] - stats["min"])
    if mode == "standardize":
        return (x - np.asarray(stats["mean"], np.float32)) / np.asarray(stats["std"], np.float32)
    return x


def fit_normalizer(x: np.ndarray, mode: str) -> dict | None:
    """Statistics of the training inputs, as NetBuilder computes them."""
    x = np.asarray(x, np.float64)
    if mode == "scale":
        lo, hi = float(x.min()), float(x.max())
        return {"mode": mode, "min": lo, "max": hi if hi > lo else lo + 1}
    if mode == "standardize":
        axes = (0, 2, 3) if x.ndim == 4 else tuple(range(x.ndim - 1))
        mean = x.mean(axis=axes, keepdims=True)[0]
        std = x.std(axis=axes, keepdims=True)[0]
        return {"mode": mode, "mean": mean, "std": np.where(std > 1e-8, std, 1.0)}
    return None


def load_data(path: str | os.PathLike, suffix: str = "") -> dict[str, np.ndarray] | None:
    """The fields the model needs from an .npz (``suffix`` "_test" for the test part)."""
    with np.load(path, allow_pickle=False) as f:
        if INPUT_FIELDS[0] + suffix not in f.files:
            if suffix:
                return None
            raise SystemExit(f"{path}: no array '{INPUT_FIELDS[0]}' (has {', '.join(f.files)})")
        data = {}
        for name, shape in INPUTS.items():
            a = np.asarray(f[name + suffix], np.float32)
            if a.shape[1:] != tuple(shape):
                if int(np.prod(a.shape[1:])) != int(np.prod(shape)):
                    raise SystemExit(f"{path}: '{name}{suffix}' has samples shaped "
                                     f"{a.shape[1:]}, the model needs {tuple(shape)}")
                a = a.reshape(len(a), *shape)
            data[name] = a
        for oid, head in OUTPUTS.items():
            name = head["target"]
            if name == "x":
                continue
            key = name if name + suffix in f.files else oid
            if key + suffix not in f.files:
                raise SystemExit(f"{path}: Output '{oid}' learns '{name}{suffix}', which the "
                                 f"file does not have (it has {', '.join(f.files)})")
            a = np.asarray(f[key + suffix])
            labels = head["loss"] in ("cross_entropy", "pixel_cross_entropy")
            data[key] = a.astype(np.int64) if labels else a.astype(np.float32)
    return data


def as_tensors(data: dict[str, np.ndarray]) -> tuple[list[str], torch.utils.data.TensorDataset]:
    keys = list(data)
    return keys, torch.utils.data.TensorDataset(*[torch.from_numpy(data[k]) for k in keys])


@torch.no_grad()
def evaluate(model: nn.Module, data: dict[str, np.ndarray], device: torch.device,
             batch_size: int = 256) -> tuple[float, float | None]:
    """(mean loss, accuracy or None) over ``data`` in inference mode."""
    model.eval()
    n = len(data[INPUT_FIELDS[0]])
    loss_sum, acc_sum = 0.0, 0.0
    for i in range(0, n, batch_size):
        batch = {k: torch.from_numpy(v[i:i + batch_size]).to(device) for k, v in data.items()}
        out = model(*[batch[f] for f in INPUT_FIELDS], loss_inputs=True)
        m = len(batch[INPUT_FIELDS[0]])
        loss_sum += float(compute_loss(out, batch)) * m
        acc = accuracy(out, batch)
        acc_sum += (acc or 0.0) * m
    has_acc = any(h["loss"] in ("cross_entropy", "bce", "pixel_cross_entropy")
                  for h in OUTPUTS.values())
    return loss_sum / max(1, n), (acc_sum / max(1, n) if has_acc else None)


# ----- training (torchrun: one process per device; otherwise one process) ------------------
def setup_distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank); joins the process group when torchrun started us."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
        return torch.distributed.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))
    return 0, 1, 0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=f"Train {MODEL_CLASS.__name__} (generated by "
                                 "NetBuilder); launch with torchrun for data-parallel training.")
    ap.add_argument("--data", required=True, help=".npz dataset (x, targets; optional *_test)")
    ap.add_argument("--epochs", type=int, default=TRAINING.get("epochs", 10))
    ap.add_argument("--batch-size", type=int, default=TRAINING.get("batch_size", 32) or 0,
                    help="samples per step and process (0 = the whole training set)")
    ap.add_argument("--lr", type=float, help="learning rate (default: the model file's)")
    ap.add_argument("--seed", type=int, default=TRAINING.get("seed", 0))
    ap.add_argument("--fresh", action="store_true",
                    help="start from PyTorch's initialisation, not the exported weights")
    ap.add_argument("--out", default=str(WEIGHTS.with_name(WEIGHTS.stem + "_trained.npz")),
                    help="where rank 0 saves the trained weights (NetBuilder names)")
    args = ap.parse_args(argv)

    rank, world, local_rank = setup_distributed()
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(args.seed)
    model = MODEL_CLASS()
    if not any(p.requires_grad for p in model.parameters()):
        raise SystemExit(f"{MODEL_CLASS.__name__} has no trainable parameters")
    if not args.fresh:
        load_weights(model)
    model.to(device)
    train = load_data(args.data)
    test = load_data(args.data, "_test")
    stats = PREPROCESS or fit_normalizer(train[INPUT_FIELDS[0]], TRAINING.get("normalize", "none"))
    for part in (train, test):
        if part is not None and stats:
            part[INPUT_FIELDS[0]] = preprocess(part[INPUT_FIELDS[0]], stats)
    keys, dataset = as_tensors(train)
    sampler = torch.utils.data.DistributedSampler(dataset, world, rank, shuffle=True,
                                                  seed=args.seed) if world > 1 else None
    gen = torch.Generator().manual_seed(args.seed)
    batch_size = args.batch_size or len(dataset)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler,
                                         shuffle=sampler is None, generator=gen)
    net = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None)
    optimizer = make_optimizer(model, lr=args.lr)
    schedule = make_schedule(optimizer, len(loader), args.epochs)
    clip = float(TRAINING.get("clip_norm", 0.0) or 0.0)
    if rank == 0:
        print(f"{MODEL_CLASS.__name__}: {sum(p.numel() for p in model.parameters()):,} "
              f"parameters; {len(dataset)} samples; {world} process(es) on {device}")
    for epoch in range(args.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        sums = torch.zeros(2, dtype=torch.float64, device=device)
        for tensors in loader:
            batch = {k: t.to(device) for k, t in zip(keys, tensors)}
            loss = train_step(net, batch, optimizer, clip)
            schedule.step()
            sums += torch.tensor([loss * len(tensors[0]), len(tensors[0])], dtype=torch.float64,
                                 device=device)
        if world > 1:
            torch.distributed.all_reduce(sums)
        if rank == 0:
            line = f"epoch {epoch + 1}/{args.epochs}  loss {float(sums[0] / sums[1]):.4f}"
            if test is not None:
                test_loss, test_acc = evaluate(model, test, device)
                line += f"  test_loss {test_loss:.4f}"
                if test_acc is not None:
                    line += f"  test_acc {100 * test_acc:.1f}%"
            print(f"{line}  {time.perf_counter() - t0:.1f}s", flush=True)
    if rank == 0:
        save_weights(model, args.out)
        print(f"saved {args.out}")
    if world > 1:
        # every rank leaves together: gloo can abort a rank that tears down while a
        # peer is still saving
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
'''
