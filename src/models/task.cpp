#include "models/task.h"

namespace hf2onnx {

const std::vector<Task>& all_tasks() {
  static const std::vector<Task> kAll = {Task::FeatureExtraction, Task::TextClassification,
                                         Task::TokenClassification, Task::QuestionAnswering,
                                         Task::FillMask, Task::TextGeneration,
                                         Task::Text2TextGeneration, Task::AutomaticSpeechRecognition,
                                         Task::ImageClassification, Task::ZeroShotImageClassification,
                                         Task::TextToImage};
  return kAll;
}

const char* task_name(Task t) {
  switch (t) {
    case Task::FeatureExtraction: return "feature-extraction";
    case Task::TextClassification: return "text-classification";
    case Task::TokenClassification: return "token-classification";
    case Task::QuestionAnswering: return "question-answering";
    case Task::FillMask: return "fill-mask";
    case Task::TextGeneration: return "text-generation";
    case Task::Text2TextGeneration: return "text2text-generation";
    case Task::AutomaticSpeechRecognition: return "automatic-speech-recognition";
    case Task::ImageClassification: return "image-classification";
    case Task::ZeroShotImageClassification: return "zero-shot-image-classification";
    case Task::TextToImage: return "text-to-image";
  }
  return "?";
}

std::optional<Task> task_from_name(const std::string& name) {
  for (Task t : all_tasks())
    if (name == task_name(t)) return t;
  return std::nullopt;
}

}  // namespace hf2onnx
