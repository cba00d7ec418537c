// The little XML S3 answers with: the text of elements by tag name.
#ifndef CKPT_S3_SRC_XML_H_
#define CKPT_S3_SRC_XML_H_

#include <string>
#include <vector>

namespace ckpt::s3 {

// The contents of every <tag>...</tag> in `xml`, in order (not nested in
// one another), with entities decoded for text.
std::vector<std::string> xml_all(const std::string& xml,
                                 const std::string& tag);
// The first one's, or "".
std::string xml_first(const std::string& xml, const std::string& tag);
// `text` with & < > " ' as entities.
std::string xml_escape(const std::string& text);

}  // namespace ckpt::s3

#endif  // CKPT_S3_SRC_XML_H_
