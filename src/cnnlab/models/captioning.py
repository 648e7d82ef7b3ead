"""Image captioning (--task caption): a CNN encoder and a recurrent decoder that writes a
sentence one word at a time.

    show_and_tell     Vinyals et al. 2015: the image, pooled to one vector, is the decoder's
                      first input (before <start>); after that it sees only the words so far
    show_attend_tell  Xu et al. 2015: every step looks again at the feature map, through soft
                      attention: weights alpha over the h x w cells (they sum to 1), a context
                      vector sum(alpha * cell), gated by beta = sigmoid(W h), fed with the word

The encoder is any cnnlab classifier (`backbone=`, efficientnet_lite0 by default) read through
its forward_features, with its class-score layers removed, so `--pretrained efficientnet_lite0`
fills it with the shipped ImageNet weights (transfer.start_backbone, keys as the classifier's).
The decoder is an LSTM or a GRU cell (`decoder=`), run one step at a time: the attention needs
the hidden state of the step before.

Captions arrive as token ids, every image's K references padded to `caption_length` tokens
(<start> words <end> <pad>...; tasks/vocabulary.py), as one N x (K * caption_length) tensor
(the layout the engine batches; tasks/caption.py). In training the model is called with them
(teacher forcing: the true previous word is the input) and returns the logits of every next
word; called with images only, it writes captions greedily; `beam_search` keeps the
`beam_size` best partial sentences at each step instead.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .base import IMAGENET_MEAN, IMAGENET_STD, choose
from .registry import create_model, model_info, register_model

# Token ids every vocabulary starts with (tasks/vocabulary.py writes them in this order).
PAD, START, END = 0, 1, 2
DECODERS = {"lstm": nn.LSTMCell, "gru": nn.GRUCell}


class Captions(NamedTuple):
    """What the model writes: token ids N x caption_length (after <start>, <end> then <pad>),
    and for the attention model the weights of every step over the feature map,
    N x caption_length x h x w (None for show-and-tell)."""
    tokens: torch.Tensor
    attention: torch.Tensor | None


def encoder(backbone: str, in_channels: int, stem: str | None,
            activation: str | None = None) -> nn.Module:
    """A classifier without its class-score layers: forward_features is all that is used, and
    its state dict then holds exactly the keys the ImageNet weights fill. `stem` and
    `activation` go to the classifier when given (LeNet-5's sigmoids learn too slowly here)."""
    if model_info(backbone).task != "classify":
        raise ValueError(f"the encoder must be a classifier, not {backbone}")
    options = {k: v for k, v in (("stem", stem), ("activation", activation)) if v is not None}
    network = create_model(backbone, num_classes=1, in_channels=in_channels, **options)
    for name in network.classifier_names():
        network.set_submodule(name, nn.Identity())
    return network


def coordinates(maps: torch.Tensor) -> torch.Tensor:
    """N x 2 x h x w: each cell's column and row, from -1 to 1 (CoordConv, Liu et al. 2018)."""
    n, _, h, w = maps.shape
    rows = torch.linspace(-1, 1, h, device=maps.device, dtype=maps.dtype)
    columns = torch.linspace(-1, 1, w, device=maps.device, dtype=maps.dtype)
    grid = torch.stack(torch.meshgrid(columns, rows, indexing="xy"))
    return grid.expand(n, -1, -1, -1)


class SoftAttention(nn.Module):
    """Additive (Bahdanau) attention of Xu et al.: e_i = v . tanh(W_f f_i + W_h h)."""

    def __init__(self, feature_dim: int, hidden_dim: int, attention_dim: int):
        super().__init__()
        self.from_features = nn.Linear(feature_dim, attention_dim)
        self.from_hidden = nn.Linear(hidden_dim, attention_dim)
        self.score = nn.Linear(attention_dim, 1)

    def forward(self, features, projected, hidden):
        """(context N x D, weights N x cells); `projected` is from_features(features), made
        once per image rather than once per step."""
        scores = self.score(torch.tanh(projected + self.from_hidden(hidden)[:, None]))
        weights = scores.squeeze(2).softmax(dim=1)
        return (weights[:, :, None] * features).sum(dim=1), weights


class Captioner(nn.Module):
    # Its training step needs the captions (teacher forcing), as a detector's needs boxes: the
    # fast path cannot time a step on images alone, and torch.fx must not trace it.
    takes_targets = True

    def __init__(self, num_classes: int = 1000, in_channels: int = 3,
                 backbone: str = "efficientnet_lite0", attention: bool = True,
                 decoder: str = "lstm", caption_length: int = 20, embed_dim: int = 256,
                 hidden_dim: int = 512, attention_dim: int = 256, feature_dim: int = 256,
                 dropout: float = 0.3, stem: str | None = None, activation: str | None = None):
        super().__init__()
        self.cell_kind = choose("decoder", decoder, DECODERS)
        self.caption_length, self.attend = caption_length, attention
        self.backbone = encoder(backbone, in_channels, stem, activation)
        _, *side = model_info(backbone).smallest_input_size
        with torch.no_grad():  # the feature maps' channels, from one small forward pass
            self.backbone.eval()  # (batch norm cannot train on one 1x1 map)
            channels = self.backbone.forward_features(torch.zeros(1, in_channels, *side)).shape[1]
            self.backbone.train()
        # 1x1 convolution: the backbone's channels (1280 for Lite0) and two of coordinates
        # to a small feature size. Xu et al.'s context vector is a weighted sum of cells, which
        # keeps what is in them but not where they are; "above" and "left of" need where.
        self.project = nn.Sequential(nn.Conv2d(channels + 2, feature_dim, 1),
                                     nn.ReLU(inplace=True))
        self.embed = nn.Embedding(num_classes, embed_dim, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        if attention:
            self.attention = SoftAttention(feature_dim, hidden_dim, attention_dim)
            self.gate = nn.Linear(hidden_dim, feature_dim)
            self.init_h, self.init_c = (nn.Linear(feature_dim, hidden_dim) for _ in range(2))
            self.cell = self.cell_kind(embed_dim + feature_dim, hidden_dim)
        else:
            self.image_in = nn.Linear(feature_dim, embed_dim)
            self.cell = self.cell_kind(embed_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, num_classes)

    # --- pieces of a step ---------------------------------------------------------------------

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """N x cells x feature_dim, and the map's (h, w)."""
        maps = self.backbone.forward_features(images)
        maps = self.project(torch.cat([maps, coordinates(maps)], dim=1))
        return maps.flatten(2).transpose(1, 2), tuple(maps.shape[-2:])

    def _lstm(self) -> bool:
        return self.cell_kind is nn.LSTMCell

    def start_state(self, features: torch.Tensor):
        """The decoder's state before the first word. Show-attend-tell: predicted from the
        mean of the cells (Xu et al.); show-and-tell: zero, then the image is its first input."""
        n, hidden = len(features), self.cell.hidden_size
        if not self.attend:
            zero = features.new_zeros(n, hidden)
            state = (zero, zero) if self._lstm() else zero
            return self.cell(self.image_in(features.mean(dim=1)), state)
        mean = features.mean(dim=1)
        h = torch.tanh(self.init_h(mean))
        return (h, torch.tanh(self.init_c(mean))) if self._lstm() else h

    def step(self, words, state, features, projected):
        """One word in: (logits of the next word, the new state, attention weights or None)."""
        hidden = state[0] if self._lstm() else state
        x, weights = self.embed(words), None
        if self.attend:
            context, weights = self.attention(features, projected, hidden)
            context = torch.sigmoid(self.gate(hidden)) * context
            x = torch.cat([x, context], dim=1)
        state = self.cell(x, state)
        hidden = state[0] if self._lstm() else state
        return self.out(self.dropout(hidden)), state, weights

    def _prepared(self, features):
        return self.attention.from_features(features) if self.attend else None

    # --- what the engine calls --------------------------------------------------------------

    def forward(self, images: torch.Tensor, captions: torch.Tensor | None = None):
        """With captions (N x (K * caption_length) ids): the logits of every next word,
        N x K x (caption_length - 1) x vocabulary (teacher forcing). Without: greedy Captions."""
        if captions is None:
            return self.greedy(images)
        n = len(images)
        captions = captions.view(n, -1, self.caption_length)
        k = captions.shape[1]
        features, _ = self.encode(images)
        # every reference of an image shares its encoding: the CNN runs once per image
        features = features.repeat_interleave(k, dim=0)
        words = captions.reshape(n * k, self.caption_length)
        projected, state = self._prepared(features), self.start_state(features)
        logits = []
        for t in range(self.caption_length - 1):
            step_logits, state, _ = self.step(words[:, t], state, features, projected)
            logits.append(step_logits)
        return torch.stack(logits, dim=1).view(n, k, self.caption_length - 1, -1)

    def greedy(self, images: torch.Tensor) -> Captions:
        """The most likely next word at every step, until <end> (then <pad>)."""
        features, (h, w) = self.encode(images)
        projected, state = self._prepared(features), self.start_state(features)
        words = torch.full((len(images),), START, dtype=torch.long, device=images.device)
        done = torch.zeros(len(images), dtype=torch.bool, device=images.device)
        tokens, maps = [], []
        for _ in range(self.caption_length - 1):
            logits, state, weights = self.step(words, state, features, projected)
            words = torch.where(done, PAD, logits.argmax(dim=1))
            done |= words == END
            tokens.append(words)
            if weights is not None:
                maps.append(weights.view(-1, h, w))
        attention = torch.stack(maps, dim=1) if maps else None
        return Captions(torch.stack(tokens, dim=1), attention)

    @torch.no_grad()
    def beam_search(self, images: torch.Tensor, beam_size: int = 3,
                    length_penalty: float = 0.7) -> Captions:
        """Per image, the `beam_size` best partial sentences kept at every step; the answer is
        the finished sentence of the highest log-probability / length ** length_penalty (a
        plain sum would favour short sentences)."""
        features, (h, w) = self.encode(images)
        found = [self._beam(features[i:i + 1], beam_size, length_penalty) for i in
                 range(len(images))]
        length = self.caption_length - 1
        tokens = images.new_full((len(images), length), PAD, dtype=torch.long)
        attention = (images.new_zeros((len(images), length, h, w)) if self.attend else None)
        for i, (words, maps) in enumerate(found):
            tokens[i, :len(words)] = words
            if attention is not None:
                attention[i, :len(maps)] = maps.view(-1, h, w)
        return Captions(tokens, attention)

    def _beam(self, features: torch.Tensor, beam_size: int, length_penalty: float):
        """(token ids up to and with <end>, their attention weights) for one image."""
        projected, state = self._prepared(features), self.start_state(features)
        words = torch.tensor([START], device=features.device)
        scores = features.new_zeros(1)
        history = words.new_zeros((1, 0))
        maps = features.new_zeros((1, 0, features.shape[1]))
        finished = []
        for t in range(self.caption_length - 1):
            rows = len(words)
            logits, state, weights = self.step(words, state, features.expand(rows, -1, -1),
                                               None if projected is None
                                               else projected.expand(rows, -1, -1))
            total = (scores[:, None] + logits.log_softmax(dim=1)).flatten()
            scores, best = total.topk(min(beam_size, len(total)))
            beam, words = best // logits.shape[1], best % logits.shape[1]
            history = torch.cat([history[beam], words[:, None]], dim=1)
            maps = maps[beam] if weights is None else torch.cat(
                [maps[beam], weights[beam][:, None]], dim=1)
            state = tuple(s[beam] for s in state) if self._lstm() else state[beam]
            ended = (words == END) | (t == self.caption_length - 2)
            for i in ended.nonzero().flatten().tolist():
                finished.append((float(scores[i]) / (t + 1) ** length_penalty, history[i],
                                 maps[i]))
            if len(finished) >= beam_size or bool(ended.all()):
                break
            keep = ~ended
            words, scores, history, maps = words[keep], scores[keep], history[keep], maps[keep]
            state = tuple(s[keep] for s in state) if self._lstm() else state[keep]
        _, sentence, weights = max(finished, key=lambda item: item[0])
        return sentence, weights

    def classifier_names(self) -> list[str]:
        return ["out"]


_PAPERS = {True: "Xu et al. 2015, Show, attend and tell: neural image caption generation "
                 "with visual attention",
           False: "Vinyals et al. 2015, Show and tell: a neural image caption generator"}


# Images keep their own size, as a segmenter's do, scaled down only beyond 256 pixels a side
# (input_size: the cap, not a design size); the stem is the backbone's (tasks/caption.py).
@register_model(family="captioning", task="caption", input_size=(3, 256, 256),
                mean=IMAGENET_MEAN, std=IMAGENET_STD, architecture=Captioner,
                paper=_PAPERS[False])
def show_and_tell(**kw):
    return Captioner(attention=False, **kw)


@register_model(family="captioning", task="caption", input_size=(3, 256, 256),
                mean=IMAGENET_MEAN, std=IMAGENET_STD, architecture=Captioner,
                paper=_PAPERS[True])
def show_attend_tell(**kw):
    return Captioner(attention=True, **kw)
