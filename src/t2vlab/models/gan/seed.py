"""The write-up's per-frame DCGAN, with only its bugs fixed.

Kept as the baseline row: each frame gets its own noise and the discriminator judges single frames
without the text, so it cannot learn motion. Fixed: the text embedding is a submodule (trained and saved),
the discriminator returns logits (use BCE-with-logits), callers rescale the Tanh output to [0, 1].
"""

import torch
from torch import nn

from t2vlab.text.bag_of_words import MeanWordEmbedding


def check_image_size(image_size: int, key: str) -> None:
    if image_size != 64:
        raise ValueError(f"{key}={image_size} is invalid (it follows dataset.settings.image_size); "
                         "allowed: 64 (the write-up's fixed architecture; "
                         "use model=video_gan for other sizes)")


class SeedGenerator(nn.Module):
    def __init__(self, vocab_size: int, text_dim: int = 10, noise_dim: int = 100, image_size: int = 64) -> None:
        super().__init__()
        check_image_size(image_size, "model.generator.image_size")
        self.noise_dim = noise_dim
        self.text = MeanWordEmbedding(vocab_size, text_dim)
        self.fc = nn.Linear(noise_dim + text_dim, 256 * 8 * 8)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(256, 128, 4, 2, 1), nn.ReLU(True),  # 8 -> 16
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ReLU(True),  # 16 -> 32
            nn.ConvTranspose2d(64, 3, 4, 2, 1), nn.Tanh(),  # 32 -> 64
        )

    def noise_shape(self, num_frames: int) -> tuple[int, ...]:
        return (num_frames, self.noise_dim)  # fresh noise per frame, as in the write-up

    def forward(self, noise: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor,
                num_frames: int | None = None) -> torch.Tensor:
        """noise (B, T, noise_dim): one vector per frame -> video (B, T, 3, 64, 64) in [-1, 1]."""
        B, T, _ = noise.shape
        text = self.text(ids, mask)  # (B, text_dim)
        x = torch.cat([noise, text.unsqueeze(1).expand(B, T, -1)], dim=-1).flatten(0, 1)
        frames = self.net(self.fc(x).view(B * T, 256, 8, 8))
        return frames.view(B, T, 3, 64, 64)


class SeedDiscriminator(nn.Module):
    def __init__(self, image_size: int = 64) -> None:
        super().__init__()
        check_image_size(image_size, "model.discriminator.image_size")
        self.net = nn.Sequential(
            nn.Conv2d(3, 64, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(64, 128, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(128, 256, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Flatten(), nn.Linear(256 * 8 * 8, 1),
        )

    def forward(self, video: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """video (B, T, 3, 64, 64) -> one logit per frame (B, T); the text is ignored, as in the write-up."""
        B, T = video.shape[:2]
        return self.net(video.flatten(0, 1)).view(B, T)
