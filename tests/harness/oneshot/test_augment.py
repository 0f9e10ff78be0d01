"""Batch pipeline: crop and flip on a hand example, seeded reproducibility, epochs, normalisation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from harness.oneshot.augment import crop_and_flip, iterate_batches, normalize, num_batches, random_crop_flip


def test_crop_and_flip_by_hand():
    # One 1x3x3 image, padding 1: the padded image is
    #   0 0 0 0 0
    #   0 1 2 3 0
    #   0 4 5 6 0
    #   0 7 8 9 0
    #   0 0 0 0 0
    x = torch.arange(1, 10, dtype=torch.uint8).view(1, 1, 3, 3).repeat(4, 1, 1, 1)
    offsets = torch.tensor([[1, 1], [0, 0], [2, 1], [0, 2]])
    flips = torch.tensor([False, False, False, True])
    out = crop_and_flip(x, offsets, flips, padding=1)[:, 0].tolist()
    assert out[0] == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]  # centre: unchanged
    assert out[1] == [[0, 0, 0], [0, 1, 2], [0, 4, 5]]  # top-left window
    assert out[2] == [[4, 5, 6], [7, 8, 9], [0, 0, 0]]  # shifted up
    assert out[3] == [[0, 0, 0], [0, 3, 2], [0, 6, 5]]  # top-right window [[0,0,0],[2,3,0],[5,6,0]], mirrored


def reference(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, padding: int) -> torch.Tensor:
    """The obvious per-image loop."""
    h, w = x.shape[2:]
    padded = F.pad(x, (padding,) * 4)
    out = []
    for image, (dy, dx), flip in zip(padded, offsets.tolist(), flips.tolist(), strict=True):
        crop = image[:, dy:dy + h, dx:dx + w]
        out.append(crop.flip(2) if flip else crop)
    return torch.stack(out)


@pytest.mark.parametrize("shape,padding", [((64, 3, 32, 32), 4), ((9, 1, 28, 28), 2), ((5, 2, 6, 11), 3)])
def test_random_crop_flip_matches_a_per_image_loop(shape, padding):
    x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(7)
    state = generator.get_state()
    out = random_crop_flip(x, generator, padding=padding)
    generator.set_state(state)  # the documented draw order: offsets (n, 2), then flips (n,)
    offsets = torch.randint(0, 2 * padding + 1, (shape[0], 2), generator=generator)
    flips = torch.randint(0, 2, (shape[0],), generator=generator).bool()
    assert torch.equal(out, reference(x, offsets, flips, padding))


def test_draws_cover_every_offset_and_flip_half_the_time():
    n = 9000
    x = torch.zeros(n, 1, 3, 3, dtype=torch.uint8)
    x[:, :, 1, 1] = 1  # a marker at the centre: with padding 1 it lands at (2 - dy, 2 - dx)
    crops = random_crop_flip(x, torch.Generator().manual_seed(0), padding=1, flip=False)
    assert torch.all((crops.view(n, 9).float().mean(0) - 1 / 9).abs() < 0.015)
    x[:, :, 1, 1] = 0
    x[:, :, 0, 0] = 1  # top-left; a flip moves it to the top-right
    flipped = random_crop_flip(x, torch.Generator().manual_seed(0), padding=0)[:, 0, 0, 2].float().mean()
    assert abs(float(flipped) - 0.5) < 0.02


def test_padding_zero_and_no_flip_is_identity():
    x = torch.randint(0, 256, (3, 3, 4, 4), dtype=torch.uint8)
    assert torch.equal(random_crop_flip(x, torch.Generator(), padding=0, flip=False), x)
    with pytest.raises(ValueError, match="0..2"):
        crop_and_flip(x, torch.full((3, 2), 3), torch.zeros(3, dtype=torch.bool), padding=1)


def labelled(n: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose every pixel holds the image's own index, so batches can be traced back."""
    index = torch.arange(n)
    return index.to(torch.uint8).view(n, 1, 1, 1).expand(n, 3, 4, 4).contiguous(), index


def epoch(seed: int, **kwargs) -> list[tuple[torch.Tensor, torch.Tensor]]:
    x, y = labelled()
    return list(iterate_batches(x, y, 8, torch.Generator().manual_seed(seed), **kwargs))


def test_same_seed_same_batches_other_seed_other_batches():
    a, b, c = epoch(3, padding=1), epoch(3, padding=1), epoch(4, padding=1)
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b, strict=True))
    assert not all(torch.equal(ya, yc) for (_, ya), (_, yc) in zip(a, c, strict=True))


def test_an_epoch_visits_every_image_once():
    batches = epoch(0, augment=False, drop_last=False)
    labels = torch.cat([y for _, y in batches])
    assert sorted(labels.tolist()) == list(range(50)) and labels.tolist() != list(range(50))
    assert [len(y) for _, y in batches] == [8] * 6 + [2] and num_batches(50, 8, False) == 7
    for x, y in batches:  # images travel with their labels
        assert torch.allclose(x[:, :, 0, 0], (y.float() / 255).view(-1, 1).expand(-1, 3))
    dropped = epoch(0, augment=False)
    assert [len(y) for _, y in dropped] == [8] * 6 and num_batches(50, 8) == 6


def test_augmented_images_keep_their_labels():
    for x, y in epoch(1, padding=1):
        centre = x[:, 0, 1:3, 1:3].reshape(len(x), -1)  # with padding 1 the centre is never padding
        assert torch.allclose(centre, (y.float() / 255).view(-1, 1).expand_as(centre))


def test_evaluation_needs_no_generator():
    x, y = labelled()
    batches = list(iterate_batches(x, y, 16, None, augment=False, drop_last=False, shuffle=False))
    assert torch.cat([b for _, b in batches]).tolist() == list(range(50))
    with pytest.raises(TypeError, match="torch.Generator"):
        next(iterate_batches(x, y, 16, None))


def test_normalize_and_channels_last():
    x = torch.randint(0, 256, (4, 3, 5, 5), dtype=torch.uint8)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    out = normalize(x, mean, std)
    expected = (x.double() / 255 - torch.tensor(mean).double().view(1, 3, 1, 1)) / torch.tensor(std).double().view(
        1, 3, 1, 1)
    assert out.dtype == torch.float32 and torch.allclose(out.double(), expected, atol=1e-5)
    last = normalize(x, mean, std, channels_last=True)
    assert last.is_contiguous(memory_format=torch.channels_last) and torch.equal(last, out)
    assert torch.allclose(normalize(x), x.float() / 255)
    with pytest.raises(TypeError):
        normalize(x.float())


def test_batches_are_float_channels_last_when_asked():
    x, y = labelled()
    images, labels = next(iterate_batches(x, y, 8, torch.Generator().manual_seed(0), padding=1,
                                          channels_last=True, mean=(0.1,) * 3, std=(0.2,) * 3))
    assert images.dtype == torch.float32 and images.is_contiguous(memory_format=torch.channels_last)
    assert labels.dtype == torch.int64 and images.shape == (8, 3, 4, 4)
