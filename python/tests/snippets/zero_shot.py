# OpenAI CLIP README, "More Examples / Zero-Shot Prediction", verbatim except:
#   - the test rewrites `import clip` (to `import clip_rs as clip` for clip-rs),
#   - 'ViT-B/32' is MODEL (injected),
#   - CIFAR-100 cannot be downloaded: instead of `cifar100[3637]` the image is a fixture file
#     (IMAGE, opened with PIL as the dataset would hand it over) and `cifar100.classes` is
#     CLASSES (CIFAR-100's 100 class names, injected).
# Results: text_inputs, image_features, text_features, similarity, values, indices.
import os
import clip
import torch
from PIL import Image

# Load the model
device = "cuda" if torch.cuda.is_available() else "cpu"
model, preprocess = clip.load(MODEL, device)

# Prepare the inputs
image = Image.open(IMAGE)
image_input = preprocess(image).unsqueeze(0).to(device)
text_inputs = torch.cat([clip.tokenize(f"a photo of a {c}") for c in CLASSES]).to(device)

# Calculate features
with torch.no_grad():
    image_features = model.encode_image(image_input)
    text_features = model.encode_text(text_inputs)

# Pick the top 5 most similar labels for the image
image_features /= image_features.norm(dim=-1, keepdim=True)
text_features /= text_features.norm(dim=-1, keepdim=True)
similarity = (100.0 * image_features @ text_features.T).softmax(dim=-1)
values, indices = similarity[0].topk(5)

# Print the result
print("\nTop predictions:\n")
for value, index in zip(values, indices):
    print(f"{CLASSES[index]:>16s}: {100 * value.item():.2f}%")
