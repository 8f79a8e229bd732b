# OpenAI CLIP README, "Usage" (github.com/openai/CLIP, README.md), verbatim except:
#   - the test rewrites `import clip` (to `import clip_rs as clip` for clip-rs),
#   - "ViT-B/32" is MODEL and "CLIP.png" is IMAGE (both injected into the globals).
# Results compared with fixtures/goldens/python-snippets.json: text, logits_per_image,
# logits_per_text, probs.
import torch
import clip
from PIL import Image

device = "cuda" if torch.cuda.is_available() else "cpu"
model, preprocess = clip.load(MODEL, device=device)

image = preprocess(Image.open(IMAGE)).unsqueeze(0).to(device)
text = clip.tokenize(["a diagram", "a dog", "a cat"]).to(device)

with torch.no_grad():
    logits_per_image, logits_per_text = model(image, text)
    probs = logits_per_image.softmax(dim=-1).cpu().numpy()

print("Label probs:", probs)  # prints: [[0.9927937  0.00421068 0.00299572]]
